//! The guest tier lives in `tests/`; this library is empty.
