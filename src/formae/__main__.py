from formae.cli.main import main

main()
