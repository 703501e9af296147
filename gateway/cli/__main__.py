from gateway.cli.main import main

if __name__ == "__main__":  # not when a spawned worker (gateway.map_pool) imports the main module
    main()
