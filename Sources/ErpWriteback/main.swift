// The erp-writeback worker (issue #21): being built.
print("erp-writeback: not built yet")
