//! Index entries computed from a document (see the layout in the module above).
