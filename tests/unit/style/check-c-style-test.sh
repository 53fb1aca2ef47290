#!/usr/bin/env bash
# scripts/check-c-style finds each rule's violation in a bad sample and
# nothing in a good one (scripts/lint runs it over the project's C files).
set -uo pipefail
top=$(cd "$(dirname "$0")/../../.." && pwd)
here=$(dirname "$0")
check=$top/scripts/check-c-style
echo "1..10"
n=0
out=$("$check" "$here/bad-style.c.sample")
rc=$?
for rule in whitespace:5 keyword:5 braces:5 braces:6 braces:10 braces:11 comment:12 length:14 fn-brace:4; do
    n=$((n + 1))
    r=${rule%%:*} l=${rule##*:}
    if grep -q "bad-style.c.sample:$l: $r:" <<<"$out" && [ "$rc" -eq 1 ]; then
        echo "ok $n - $r found on line $l"
    else
        echo "not ok $n - $r not found on line $l"
        printf '%s\n' "$out" | sed 's/^/# /'
    fi
done
n=$((n + 1))
if out=$("$check" "$here/good-style.c.sample") && [ -z "$out" ]; then
    echo "ok $n - nothing in the good sample"
else
    echo "not ok $n - findings in the good sample"
    printf '%s\n' "$out" | sed 's/^/# /'
fi
