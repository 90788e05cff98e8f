"""PromQL evaluation over promql-parser's AST (see engine.py)."""
