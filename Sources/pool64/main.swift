print("pool64")
