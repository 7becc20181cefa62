import WSCtl
WSCtlCommand.runMain()
