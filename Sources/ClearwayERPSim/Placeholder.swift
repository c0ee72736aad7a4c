// Replaced by the simulator (issue #21).
