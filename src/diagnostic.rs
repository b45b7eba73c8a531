//! Rendering of errors for people: the source line, a caret under the span, and what was expected.
