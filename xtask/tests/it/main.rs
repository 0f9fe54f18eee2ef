//! Workspace-wide checks: the layering rules of ARCHITECTURE.md, checked mechanically.

mod architecture;
