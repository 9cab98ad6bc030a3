"""Loaded by the schemathesis process of crates/cli/tests/schemathesis.rs (PYTHONPATH).

On this machine's CPython 3.11.7, `ast.parse` now and then raises SystemError("AST constructor
recursion depth mismatch") when hypothesis describes a lambda from deep in schemathesis's coverage
phase (it parses the lambda's whole source module). The run then reports a "Runtime Error" for an
operation that every generated case passed. A description is only a label: fall back to
hypothesis's own "<unknown>" label instead of failing the run. Nothing else changes.
"""

try:
    import hypothesis.internal.lambda_sources as _lambda_sources
except ImportError:  # another Python on PYTHONPATH: nothing to mend
    _lambda_sources = None

if _lambda_sources is not None and hasattr(_lambda_sources, "_lambda_description"):
    _describe = _lambda_sources._lambda_description

    def _lambda_description(f, *args, **kwargs):
        try:
            return _describe(f, *args, **kwargs)
        except SystemError:
            return "lambda: <unknown>"

    _lambda_sources._lambda_description = _lambda_description
