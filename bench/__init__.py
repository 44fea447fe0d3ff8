"""Benchmarks of tb-xquant on generated MCT 2.6.1 logdirs (see bench/README.md)."""
