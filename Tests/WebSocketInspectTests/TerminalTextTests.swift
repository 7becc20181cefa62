import Testing
@testable import WebSocketInspect

@Suite("Terminal text")
struct TerminalTextTests {
    /// `characterPrefix` either declines or tells exactly what counting Swift's Characters tells:
    /// the bytes of the first `limit` characters, and whether more follow. The strings mix the
    /// scalars it reads as a character each with scalars that join others or are joined (combining
    /// marks, ZWJ, a variation selector, an emoji modifier, CR before LF, regional indicators,
    /// Hangul jamo and syllables, a Thai spacing mark, the soft hyphen, a kana voicing mark).
    @Test func characterPrefixAgreesWithCharacters() {
        let simple = ["a", "Z", " ", "\"", "\\", "\t", "\n", "é", "ï", "ß", "ſ", "—", "…", "日", "本", "語", "ア", "あ", "、",
                      "🙂", "😀"]
        let joining = ["\u{301}", "\u{200D}", "\u{FE0F}", "\u{1F3FB}", "\r", "\u{1F1E6}", "\u{1100}", "\u{1161}", "\u{AC00}",
                       "\u{E33}", "\u{AD}", "\u{3099}", "👍"]
        var g = Seeded(state: 21)
        var told = 0, declined = 0, cut = 0
        for round in 0..<20_000 {
            var s = ""
            for _ in 0..<Int(g.next() % 120) {
                let pool = g.next() % 12 == 0 ? joining : simple
                s += pool[Int(g.next() % UInt64(pool.count))]
            }
            let limit = round % 2 == 0 ? 80 : Int(g.next() % 100)
            let bytes = Array(s.utf8)
            guard let (length, more) = bytes.withUnsafeBytes({ TerminalText.characterPrefix($0, limit: limit) }) else {
                declined += 1
                continue
            }
            told += 1
            if more { cut += 1 }
            #expect(Array(bytes[..<length]) == Array(String(s.prefix(limit)).utf8), "\(s.unicodeScalars.map { String($0.value, radix: 16) })")
            #expect(more == (s.count > limit))
        }
        #expect(told > 2_000 && declined > 2_000 && cut > 500, "\(told) told, \(declined) declined, \(cut) cut")
    }

    /// What `characterPrefix` reads is escaped by JSON's rules alone: no scalar it takes is one
    /// `quoted` escapes beyond them (DEL, C1, the bidirectional controls), so its callers need not
    /// look for those again.
    @Test func characterPrefixTakesNothingEscapedBeyondJSON() {
        let taken = (0...0x10FFFF as ClosedRange<UInt32>).filter { TerminalText.alwaysBreaksAround($0) && TerminalText.isControl($0) }
        #expect(taken.allSatisfy { $0 < 0x20 }, "\(taken.filter { $0 >= 0x20 }.prefix(8).map { String($0, radix: 16) })")
    }

    /// A frame's text shown cut at --max-payload may end inside a character: read to its end,
    /// such bytes are declined (the String path shows them repaired), never told as a prefix.
    @Test func aTextCutInsideACharacterIsDeclined() {
        for whole in ["日本語", "naïve é", "🙂🙂", "a—b"] {
            let bytes = Array(whole.utf8)
            for cut in 1..<bytes.count where String(validating: bytes[..<cut], as: UTF8.self) == nil {
                let told = bytes[..<cut].withUnsafeBytes { TerminalText.characterPrefix($0, limit: 80) }
                #expect(told == nil, "\(whole) cut at \(cut)")
            }
        }
    }
}
