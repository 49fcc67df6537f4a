from specplug.cli import main

main()
