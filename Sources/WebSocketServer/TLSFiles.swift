#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOSSL

/// A TLS certificate or key file that cannot be used, and why, naming the file.
public struct TLSFileError: Error, CustomStringConvertible, Sendable {
    public enum File: Sendable {
        case certificate
        case privateKey
    }

    /// Which of the two files is at fault.
    public var file: File
    public var path: String
    /// What is wrong with it, such as `cannot read: No such file or directory`.
    public var problem: String

    public var description: String {
        "TLS \(file == .certificate ? "certificate" : "private key") \(path): \(problem)"
    }
}

/// Reads and checks the PEM certificate chain and private key for `wss://`, before anything is
/// bound, so that a missing, unreadable or wrong file is reported with its name and cause (NIOSSL
/// itself says only `failedToLoadCertificate` or `failedToLoadPrivateKey`).
public enum TLSFiles {
    /// Larger than any PEM chain or key; keeps a path such as /dev/zero from being read forever.
    static let maximumSize = 1 << 20

    /// The server's TLS context from the two files, or the first problem found.
    public static func makeContext(certificatePath: String, keyPath: String) throws(TLSFileError) -> NIOSSLContext {
        let certificateBytes = try read(certificatePath, .certificate)
        let keyBytes = try read(keyPath, .privateKey)
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMBytes(certificateBytes)
        } catch {
            certificates = []
        }
        guard !certificates.isEmpty else {
            throw TLSFileError(file: .certificate, path: certificatePath, problem: certificateProblem(certificateBytes))
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
        } catch {
            throw TLSFileError(file: .privateKey, path: keyPath, problem: keyProblem(keyBytes))
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: certificates.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.applicationProtocols = ["http/1.1"]
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch NIOSSLError.failedToLoadPrivateKey {
            throw TLSFileError(file: .privateKey, path: keyPath,
                               problem: "does not match the certificate in \(certificatePath) (it is the key of another certificate)")
        } catch {
            throw TLSFileError(file: .certificate, path: certificatePath, problem: "cannot be used with the key in \(keyPath): \(error)")
        }
    }

    /// The file's bytes, or why they cannot be read (the system's words: `No such file or
    /// directory`, `Permission denied`, `Is a directory`).
    static func read(_ path: String, _ file: TLSFileError.File) throws(TLSFileError) -> [UInt8] {
        func failure(_ problem: String) -> TLSFileError { TLSFileError(file: file, path: path, problem: problem) }
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw failure("cannot read: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = chunk.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("cannot read: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            bytes += chunk[..<n]
            if bytes.count > maximumSize { throw failure("over \(maximumSize >> 20) MiB: not a PEM file") }
        }
        if bytes.isEmpty { throw failure("the file is empty") }
        return bytes
    }

    #if canImport(Glibc)
    private static let systemRead = Glibc.read
    #else
    private static let systemRead = Darwin.read
    #endif

    private static func contains(_ bytes: [UInt8], _ text: String) -> Bool {
        let needle = Array(text.utf8)
        guard needle.count <= bytes.count else { return false }
        return (0...(bytes.count - needle.count)).contains { bytes[$0..<($0 + needle.count)].elementsEqual(needle) }
    }

    static func certificateProblem(_ bytes: [UInt8]) -> String {
        if contains(bytes, "CERTIFICATE-----") {
            return "not a valid PEM certificate: its CERTIFICATE block does not parse"
        }
        if contains(bytes, "PRIVATE KEY-----") {
            return "not a PEM certificate: it holds a private key (are the certificate and key files swapped?)"
        }
        return "not a PEM certificate: no -----BEGIN CERTIFICATE----- block"
    }

    static func keyProblem(_ bytes: [UInt8]) -> String {
        if contains(bytes, "ENCRYPTED") {
            return "the private key is encrypted; give an unencrypted one (openssl pkey -in KEY -out KEY.plain.pem)"
        }
        if contains(bytes, "PRIVATE KEY-----") {
            return "not a valid PEM private key: its PRIVATE KEY block does not parse"
        }
        if contains(bytes, "CERTIFICATE-----") {
            return "not a PEM private key: it holds a certificate (are the certificate and key files swapped?)"
        }
        return "not a PEM private key: no -----BEGIN … PRIVATE KEY----- block"
    }
}
