# Entry points; the scripts in lab/ do the work.
.PHONY: test demo bench

test:
	./lab/run-tests

demo:
	./lab/demo

# Patched vs base 7.3 side by side (not part of `test`; 10-15 minutes).
# LAB_BENCH_BASE=... LAB_BENCH_PATCHED=... to use prebuilt images.
bench:
	./lab/bench
