import Foundation
import Testing

/// `--tls-cert` and `--tls-key` are read and parsed before anything is bound: a missing,
/// unreadable or wrong file is a usage error (exit 2, as for --script and --auth-tokens-file)
/// naming the flag, the file and the cause, never "cannot listen on …: failedToLoadCertificate".
@Suite("wsctl serve TLS files", .requiresOpenSSL, .timeLimit(.minutes(2)))
struct ServeTLSFilesTests {
    /// Two self-signed certificates with their keys, an encrypted copy of the first key and a
    /// file that is not PEM, in a fresh directory.
    struct Files {
        let directory: URL
        var cert: String { path("cert.pem") }
        var key: String { path("key.pem") }
        var otherKey: String { path("other-key.pem") }
        var encryptedKey: String { path("encrypted-key.pem") }
        var junk: String { path("junk.txt") }
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("wsctl-serve-tls-files-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            for (cert, key) in [("cert.pem", "key.pem"), ("other-cert.pem", "other-key.pem")] {
                let made = Interop.probe(Interop.openssl!, [
                    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", path(key), "-out", path(cert), "-days", "2", "-subj", "/CN=localhost",
                ])
                guard made?.status == 0 else { throw CLIError("openssl req failed: \(made?.output ?? "did not run")") }
            }
            let encrypted = Interop.probe(Interop.openssl!, ["pkey", "-in", path("key.pem"), "-aes256", "-passout", "pass:secret", "-out", path("encrypted-key.pem")])
            guard encrypted?.status == 0 else { throw CLIError("openssl pkey failed: \(encrypted?.output ?? "did not run")") }
            try Data("not a certificate\n".utf8).write(to: URL(fileURLWithPath: path("junk.txt")))
        }
    }

    @Test func badTLSFilesAreUsageErrorsNamingTheFileAndTheCause() async throws {
        let files = try Files()
        defer { try? FileManager.default.removeItem(at: files.directory) }
        let missing = files.path("missing.pem")
        let cases: [(cert: String, key: String, message: String)] = [
            (missing, missing, "--tls-cert \(missing): cannot read: No such file or directory"),
            (files.cert, missing, "--tls-key \(missing): cannot read: No such file or directory"),
            (files.directory.path, files.key, "--tls-cert \(files.directory.path): cannot read: Is a directory"),
            (files.junk, files.key, "--tls-cert \(files.junk): not a PEM certificate"),
            (files.key, files.key, "--tls-cert \(files.key): not a PEM certificate: it holds a private key"),
            (files.cert, files.cert, "--tls-key \(files.cert): not a PEM private key: it holds a certificate"),
            (files.cert, files.junk, "--tls-key \(files.junk): not a PEM private key"),
            (files.cert, files.encryptedKey, "--tls-key \(files.encryptedKey): the private key is encrypted"),
            (files.cert, files.otherKey, "--tls-key \(files.otherKey): does not match the certificate in \(files.cert)"),
        ]
        let results = try await offThePool {
            try cases.map { try ServeStartup.run(["--tls-cert", $0.cert, "--tls-key", $0.key]) }
        }
        for (c, r) in zip(cases, results) {
            #expect(r.status == 2, "\(c.message): \(r.stderr)")
            #expect(r.stderr.contains(c.message), "\(r.stderr)")
            #expect(!r.stderr.contains("cannot listen"), "\(r.stderr)")
        }
    }

    @Test func goodFilesStillServeWss() async throws {
        let files = try Files()
        defer { try? FileManager.default.removeItem(at: files.directory) }
        let r = try await offThePool { try ServeStartup.run(["--tls-cert", files.cert, "--tls-key", files.key]) }
        #expect(r.status == nil, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("wss://127.0.0.1:"), "\(r.stdout) \(r.stderr)")
    }
}
