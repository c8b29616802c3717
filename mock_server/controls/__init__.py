"""Controls over the fake: the journal, faults, latency and their rule syntax."""
