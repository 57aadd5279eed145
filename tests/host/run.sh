#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs the host test binaries of the given variants (default: asan tsan), printing their gtest
# output, and ends with the line "host: N passed, N failed, N skipped" (summed over the
# variants).
# Exits non-zero if any test failed, a binary crashed, or a sanitizer reported at exit.
#   run.sh [--build] [asan|tsan|plain]...
# --build first builds the variants (make -j2). CXMQ_RUN_BUG_TESTS=1 also runs the tests that
# show known bugs of the core (skipped otherwise). Extra gtest flags: GTEST_ARGS="...".
set -u
cd "$(dirname "$0")"

build=0
variants=()
for a in "$@"; do
	case $a in
	--build) build=1 ;;
	asan | tsan | plain) variants+=("$a") ;;
	*) echo "run.sh: unknown argument: $a" >&2; exit 2 ;;
	esac
done
[ ${#variants[@]} -gt 0 ] || variants=(asan tsan)

if [ $build = 1 ]; then
	if ! make -j2 --no-print-directory "${variants[@]/#/build-}"; then
		echo "host: 0 passed, 1 failed, 0 skipped"
		exit 1
	fi
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_init_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-second_deadlock_stack=1:history_size=4}

passed=0 failed=0 skipped=0 rc=0
notes=()
for v in "${variants[@]}"; do
	bin=build/$v/cxmq_host_tests
	json=build/$v/results.json
	log=build/$v/output.log
	echo "==== host tests: $v ===="
	if [ ! -x "$bin" ]; then
		echo "run.sh: $bin is not built (make -C tests/host build-$v)"
		failed=$((failed + 1)); rc=1; notes+=("$v: not built")
		continue
	fi
	rm -f "$json"
	# shellcheck disable=SC2086
	timeout -k 10 900 "$bin" --gtest_output="json:$json" ${GTEST_ARGS:-} 2>&1 | tee "$log"
	status=${PIPESTATUS[0]}
	if [ -s "$json" ]; then
		p=$(jq '[.testsuites[].testsuite[] | select((.failures // []) == [] and .result == "COMPLETED")] | length' "$json")
		f=$(jq '[.testsuites[].testsuite[] | select((.failures // []) != [])] | length' "$json")
		s=$(jq '[.testsuites[].testsuite[] | select((.failures // []) == [] and .result == "SKIPPED")] | length' "$json")
	else
		# No report: the binary died (a sanitizer error, a trap, a timeout). Count what the
		# output shows, and the test that was running as failed.
		p=$(grep -c '^\[       OK \]' "$log")
		f=$(grep -cE '^\[  FAILED  \] .* \([0-9]+ ms\)$' "$log")
		s=$(grep -cE '^\[  SKIPPED \] .* \([0-9]+ ms\)$' "$log")
		f=$((f + 1))
		notes+=("$v: the test binary died (exit status $status) before it finished")
	fi
	if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
		# Every test passed but the process failed: a leak or a sanitizer report at exit.
		f=1
		notes+=("$v: exit status $status after all tests passed (leak or sanitizer report at exit)")
	fi
	[ "$status" -eq 0 ] || rc=1
	[ "$f" -eq 0 ] || rc=1
	echo "==== $v: $p passed, $f failed, $s skipped ===="
	passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
done

for n in "${notes[@]}"; do
	echo "host: $n"
done
if [ "$skipped" -gt 0 ]; then
	echo "host: the skipped tests show known bugs (see their BUG: comments); CXMQ_RUN_BUG_TESTS=1 runs them"
fi
echo "host: $passed passed, $failed failed, $skipped skipped"
exit $rc
