import WSCtl
WSCtlCommand.main()
