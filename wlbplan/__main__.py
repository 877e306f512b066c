from wlbplan.cli import main

main()
