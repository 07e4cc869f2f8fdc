"""Annotator review web page for curated bad cases."""
