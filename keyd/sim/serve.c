/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Many connections to one launch at once. Each accepted connection gets a
 * thread that reads its frames; the requests themselves are serialized on
 * the launch's lock in kd_sim_serve_fd (the guest driver's guest-request
 * mutex), so one idle or slow client never holds up another: the lock is
 * per request, never per connection.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "keyd/error.h"
#include "keyd/sim.h"

struct server {
	struct kd_sim_fw *fw;
	kd_sim_log_fn on_request;
	kd_sim_conn_fn on_end;
	void *ctx;
	pthread_mutex_t mu;
	pthread_cond_t idle;
	unsigned active;
};

struct conn {
	struct server *s;
	int fd;
};

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct server *s = c->s;
	int r = kd_sim_serve_fd(s->fw, c->fd, false, s->on_request, s->ctx);

	if (s->on_end)
		s->on_end(s->ctx, r);
	close(c->fd);
	free(c);
	pthread_mutex_lock(&s->mu);
	if (--s->active == 0)
		pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int kd_sim_serve_listener(struct kd_sim_fw *fw, int lfd, kd_sim_log_fn on_request,
			  kd_sim_conn_fn on_end, void *ctx)
{
	struct server s = {.fw = fw, .on_request = on_request, .on_end = on_end, .ctx = ctx};
	pthread_attr_t attr;
	int r = 0;

	pthread_mutex_init(&s.mu, NULL);
	pthread_cond_init(&s.idle, NULL);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			/* shutdown(lfd) is the way to stop: accept fails with EINVAL. */
			if (errno != EINVAL)
				r = kd_fail(KD_EIO, "accept: %s", strerror(errno));
			break;
		}
		c = malloc(sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->s = &s;
		c->fd = fd;
		pthread_mutex_lock(&s.mu);
		s.active++;
		pthread_mutex_unlock(&s.mu);
		{
			pthread_t t;
			int e = pthread_create(&t, &attr, conn_main, c);

			if (e != 0) {
				close(fd);
				free(c);
				pthread_mutex_lock(&s.mu);
				s.active--;
				pthread_mutex_unlock(&s.mu);
			}
		}
	}
	/* Every connection thread uses s and fw: wait for the last one. */
	pthread_mutex_lock(&s.mu);
	while (s.active)
		pthread_cond_wait(&s.idle, &s.mu);
	pthread_mutex_unlock(&s.mu);
	pthread_attr_destroy(&attr);
	pthread_cond_destroy(&s.idle);
	pthread_mutex_destroy(&s.mu);
	return r;
}
