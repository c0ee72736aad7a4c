// Replaced by the ERP tests (issue #21).
