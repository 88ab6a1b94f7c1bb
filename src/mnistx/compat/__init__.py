"""The private names of other libraries mnistx relies on, one module per library.

Each module here is the only place its library's internals (an underscored attribute, a
module under `_internal`, a stack frame's function name) are touched, and each such name has
an assumption test in tests/test_compat_<library>.py that fails, naming it, when an installed
release changes it. tests/test_architecture.py fails on a foreign private name anywhere else.
"""
