#!/usr/bin/env bash
# git workload for hz3's LD_PRELOAD tests: usage git_workload.sh WORKDIR
#
# Builds a repository with fixed authors and dates (so every hash is
# reproducible), makes a few hundred files over several commits and a
# branch merge, repacks with delta search in several threads, then prints
# history, object listings and fsck output on stdout.  Run with and without
# the allocator preloaded: stdout must be identical.  git's progress chatter
# goes to stderr and is not compared.
set -euo pipefail

work=$1
mkdir -p "$work"
cd "$work"

export HOME="$work" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null LC_ALL=C TZ=UTC
export GIT_AUTHOR_NAME="Hz Three" GIT_AUTHOR_EMAIL="hz3@example.invalid"
export GIT_COMMITTER_NAME="Hz Three" GIT_COMMITTER_EMAIL="hz3@example.invalid"
n=0
stamp() {
	n=$((n + 1))
	local min
	min=$(printf %02d $((n % 60)))
	export GIT_AUTHOR_DATE="2024-01-01T00:00:00Z" GIT_COMMITTER_DATE="2024-01-01T00:${min}:00Z"
}

# deterministic file contents without relying on any other tool's allocator
gen() { # gen FILE SEED LINES
	local f=$1 s=$2 lines=$3 i
	{
		for ((i = 0; i < lines; i++)); do
			s=$(((s * 1103515245 + 12345) % 2147483648))
			echo "line $i of $f: value $s $((s % 977)) lorem ipsum dolor sit amet $((s % 31))"
		done
	} >"$f"
}

git init -q -b main repo
cd repo
git config core.autocrlf false
git config gc.auto 0
mkdir -p src docs data
for i in $(seq 1 120); do gen "src/file$i.c" "$i" 40; done
for i in $(seq 1 30); do gen "docs/doc$i.txt" "$((i + 1000))" 120; done
stamp
git add -A
git commit -q -m "initial import"

for round in 1 2 3 4 5; do
	for i in $(seq "$round" 7 120); do gen "src/file$i.c" "$((i * 7 + round))" $((40 + round * 3)); done
	gen "data/round$round.dat" "$((round + 500))" 400
	stamp
	git add -A
	git commit -q -m "round $round: rewrite some sources"
done

git checkout -q -b feature HEAD~2
for i in $(seq 1 40); do gen "src/feature$i.c" "$((i + 9000))" 30; done
git rm -q docs/doc3.txt
stamp
git add -A
git commit -q -m "feature work"
git checkout -q main
stamp
git merge -q --no-ff -m "merge feature" feature
git tag -a v1 -m "tag v1"

# repack with delta compression in several threads (allocation heavy)
git -c pack.threads=4 repack -q -a -d -f --depth=50 --window=50
git gc -q --prune=now

echo "== log"
git log --graph --stat --format='%H %an %ad %s' --date=iso-strict main
echo "== rev-list"
git rev-list --objects --all | sort
echo "== cat-file"
git cat-file --batch-all-objects --batch-check | sort
echo "== fsck"
git fsck --full --strict 2>&1 | sort
echo "== diff"
git diff --stat v1~3 v1
git diff v1~1 v1 | sha256sum
echo "== show"
git show --format='%H %P %s' v1 | sed -n 1,50p
echo "== blame"
git blame -s src/file8.c | sed -n 1,20p
echo "== grep"
git grep -c "value 1" v1 | sed -n 1,20p
echo "== done"
