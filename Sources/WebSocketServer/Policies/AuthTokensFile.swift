#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why `--auth-tokens-file` could not be used.
public struct AuthTokensFileError: Error, Hashable, Sendable, CustomStringConvertible {
    public var path: String
    /// What went wrong: the system's words for an I/O error, or what is wrong with the contents.
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "cannot use auth tokens file \(path): \(reason)" }
}

/// `--auth-tokens-file`: one token per line.
///
/// Each line is trimmed of spaces, tabs and a trailing CR (files written on Windows); blank lines and
/// lines whose first character is `#` are comments. Nothing else is special: a `#` after a token is
/// part of it. A file with no tokens is an error rather than "no authentication", so that an empty
/// or mistyped file cannot silently open the server to everyone.
public enum AuthTokensFile {
    /// Reads and parses the file at `path`.
    public static func load(path: String) throws(AuthTokensFileError) -> [String] {
        let bytes = try readFile(path: path)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw AuthTokensFileError(path: path, reason: "not UTF-8 text")
        }
        let tokens = parse(text)
        guard !tokens.isEmpty else {
            throw AuthTokensFileError(path: path, reason: "no tokens in it (one per line; # starts a comment)")
        }
        return tokens
    }

    /// The tokens in the text of a tokens file, in order, without duplicates.
    public static func parse(_ text: String) -> [String] {
        var seen = Set<String>()
        var tokens: [String] = []
        for line in text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) {
            var slice = line.trimmingBlanks
            while slice.last == "\r" { slice = slice.dropLast().trimmingBlanks }
            if slice.first == "\u{FEFF}" { slice = slice.dropFirst().trimmingBlanks }
            guard !slice.isEmpty, slice.first != "#" else { continue }
            let token = String(slice)
            if seen.insert(token).inserted { tokens.append(token) }
        }
        return tokens
    }

    private static func readFile(path: String) throws(AuthTokensFileError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw systemError(path) }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw systemError(path)
            }
            if count == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<count])
            // A tokens file is a few lines; refuse to read a huge or endless one (a device, a pipe that never ends).
            guard bytes.count <= maxFileSize else {
                throw AuthTokensFileError(path: path, reason: "larger than \(maxFileSize / (1 << 20)) MiB; is this the right file?")
            }
        }
    }

    /// 16 MiB: far more than any list of tokens, small enough to hold in memory.
    static let maxFileSize = 16 << 20

    private static func systemError(_ path: String) -> AuthTokensFileError {
        AuthTokensFileError(path: path, reason: String(cString: strerror(errno)))
    }
}
