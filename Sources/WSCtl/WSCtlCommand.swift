import ArgumentParser

public struct WSCtlCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "wsctl",
        abstract: "A WebSocket protocol toolkit."
    )
    public init() {}
}
