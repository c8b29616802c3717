"""The framework-free engine: authorise, parse and validate a body, synthesise the answer."""
