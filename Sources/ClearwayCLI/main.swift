print("clearway")
