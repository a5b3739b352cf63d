#!/bin/bash
# make lint: ShellCheck at severity warning over every shell script of the
# tree: bash and the POSIX sh of the initramfs, by name (*.sh, *.bash) or by
# their #! line; sourced files are followed (-x) from the top of the tree.
set -euo pipefail
# shellcheck source=tests/lib.bash
. "$(dirname "$0")/lib.bash"
kd_loud
cd "$(dirname "$0")/.."

command -v shellcheck >/dev/null || { echo "lint: shellcheck is missing (make deps-lint)" >&2; exit 1; }
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	mapfile -t all < <(git ls-files)
else
	mapfile -t all < <(find . -type f -not -path './build*' -not -path './.git/*' | sed 's|^\./||')
fi
files=()
for f in "${all[@]}"; do
	[ -f "$f" ] || continue
	case $f in
	*.sh | *.bash) files+=("$f") ;;
	*)
		IFS= read -r first <"$f" || true
		case $first in
		'#!'*/sh | '#!'*/bash | '#!'*'/env bash' | '#!'*/sh\ * | '#!'*/bash\ *) files+=("$f") ;;
		esac
		;;
	esac
done
shellcheck -x -S warning "${files[@]}"
# No reader that stops early on the right of a pipe (tests/lib.bash, rule 1):
# under pipefail its writer dies of SIGPIPE at random. Comments are skipped.
bad=$(grep -nE '^[^#]*[^|]\|[[:space:]]*(head([[:space:]]|$)|grep[[:space:]]+-[a-zA-Z]*[qm]|awk[^|]*[;{[:space:]]exit[[:space:];}])' \
	"${files[@]}" || true)
if [ -n "$bad" ]; then
	printf '%s\n' "$bad" >&2
	echo "lint: an early-exit reader on the right of a pipe (above); capture the output first" >&2
	exit 1
fi
echo "lint: shellcheck -S warning clean on ${#files[@]} shell files"
