// The chaos run (scripts/chaos): under construction.
print("clearway-chaos")
