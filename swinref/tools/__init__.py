"""What porters run: test vectors and verify, the conformance kit, cross-checks against installed
implementations, FLOPs, pictures."""
