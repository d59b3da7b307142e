"""The agent (formae's "metastructure"): the actors that turn formas into cloud resources."""
