"""The spec side: loading OpenAPI files, converting them to JSON Schema, diffing them."""
