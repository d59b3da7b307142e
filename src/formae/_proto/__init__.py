"""Generated protobuf and gRPC code only: see scripts/generate-proto."""
