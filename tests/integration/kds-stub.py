#!/usr/bin/env python3
"""A KDS stand-in on loopback for the tests: serves files from the test
vectors under KDS's URL layout and logs every request line. Never the real
service.

usage: kds-stub.py PORTFILE LOG ROUTE...   ROUTE = /exact/path?query=FILE
A request whose path and query do not match a route exactly gets 404.
"""
import http.server
import sys


def main():
    portfile, log = sys.argv[1], sys.argv[2]
    routes = {}
    for r in sys.argv[3:]:
        path, _, f = r.rpartition("=")
        routes[path] = f

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            with open(log, "a") as lf:
                lf.write(self.path + "\n")
            f = routes.get(self.path)
            if f is None:
                self.send_error(404)
                return
            with open(f, "rb") as fh:
                body = fh.read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except BrokenPipeError:
                pass

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), H)
    with open(portfile + ".tmp", "w") as pf:
        pf.write(str(srv.server_address[1]))
    import os
    os.rename(portfile + ".tmp", portfile)
    srv.serve_forever()


if __name__ == "__main__":
    main()
