"""`cpgait-bench`: per-stage latency profiling for every backend. Heavy imports happen inside the commands."""
