import StudioCore
import StudioTerminal
import Testing

/// The reply parser and the environment rules of `--graphics auto` (docs/peers.md §3, Detection).
@Suite struct GraphicsDetectionTests {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func da1WithAttribute4MeansSixel() {
        let reply = GraphicsDetection.parse(Self.bytes("\u{1B}[?62;4;22c"))
        #expect(reply == ProbeReply(sixel: true, kitty: false, complete: true))
        // xterm as VT340 answers with 4 further along.
        #expect(GraphicsDetection.parse(Self.bytes("\u{1B}[?63;1;2;4;6;9;15;16;22;28c")).sixel)
    }

    @Test func da1WithoutAttribute4IsNoSixel() {
        #expect(GraphicsDetection.parse(Self.bytes("\u{1B}[?1;2c")) == ProbeReply(sixel: false, kitty: false, complete: true))
        // 64 and 42 contain the digit 4 but are other attributes; 4 as the first parameter is the class, not sixel.
        #expect(!GraphicsDetection.parse(Self.bytes("\u{1B}[?64;42;22c")).sixel)
        #expect(!GraphicsDetection.parse(Self.bytes("\u{1B}[?4;1c")).sixel)
    }

    @Test func kittyReplyBeforeTheSentinel() {
        let reply = GraphicsDetection.parse(Self.bytes("\u{1B}_Gi=31;OK\u{1B}\\\u{1B}[?62;22c"))
        #expect(reply == ProbeReply(sixel: false, kitty: true, complete: true))
        // An error reply is not support.
        #expect(!GraphicsDetection.parse(Self.bytes("\u{1B}_Gi=31;ENOTSUPPORTED:no\u{1B}\\\u{1B}[?62c")).kitty)
    }

    /// OSC 11's answer (xterm: `ESC ] 11 ; rgb:ffff/ffff/ffff ESC \\`; others end with BEL or send 2 hex digits).
    @Test func backgroundColourReplies() {
        let white = GraphicsDetection.parse(Self.bytes("\u{1B}]11;rgb:ffff/ffff/ffff\u{1B}\\\u{1B}[?62;4c"))
        #expect(white == ProbeReply(sixel: true, kitty: false, complete: true, background: RGB(255, 255, 255)))
        let dark = GraphicsDetection.parse(Self.bytes("\u{1B}_Gi=31;OK\u{1B}\\\u{1B}]11;rgb:1e/1e/2e\u{07}\u{1B}[?1;2c"))
        #expect(dark == ProbeReply(sixel: false, kitty: true, complete: true, background: RGB(30, 30, 46)))
        #expect(GraphicsDetection.parse(Self.bytes("\u{1B}]11;rgba:8080/0000/ffff/ffff\u{07}\u{1B}[?1c")).background == RGB(128, 0, 255))
        for bad in ["\u{1B}]11;rgb:zz/00/00\u{07}", "\u{1B}]11;?\u{07}", "\u{1B}]10;rgb:ff/ff/ff\u{07}", "\u{1B}]11;rgb:fffff/0/0\u{07}",
                    "\u{1B}]11;rgb:ff/ff\u{07}", "\u{1B}]11;#ffffff\u{07}"] {
            let reply = GraphicsDetection.parse(Self.bytes(bad + "\u{1B}[?62c"))
            #expect(reply.background == nil && reply.complete, "\(bad.debugDescription)")
        }
        // An unfinished OSC reply does not hide the rest: the probe is not complete yet.
        #expect(!GraphicsDetection.parse(Self.bytes("\u{1B}]11;rgb:ff")).complete)
        #expect(GraphicsDetection.probeQuery.contains("\u{1B}]11;?\u{1B}\\\u{1B}[c"))
    }

    @Test func partialRepliesAreIncomplete() {
        #expect(!GraphicsDetection.parse(Self.bytes("\u{1B}_Gi=31;OK\u{1B}\\\u{1B}[?62;4")).complete)
        #expect(!GraphicsDetection.parse([]).complete)
        // Keys typed before the probe do not confuse it.
        #expect(GraphicsDetection.parse(Self.bytes("ab\u{1B}[A\u{1B}[?62;4c")) == ProbeReply(sixel: true, kitty: false, complete: true))
    }

    static let utf8 = ["LANG": "en_US.UTF-8"]
    static func environment(_ extra: [String: String]) -> [String: String] { utf8.merging(extra) { $1 } }

    @Test func environmentNamesKittyAndSixelTerminals() {
        #expect(GraphicsDetection.fromEnvironment(Self.environment(["TERM": "xterm-kitty"])) == .kitty)
        #expect(GraphicsDetection.fromEnvironment(Self.environment(["TERM": "xterm-256color", "KITTY_WINDOW_ID": "1"])) == .kitty)
        #expect(GraphicsDetection.fromEnvironment(Self.environment(["TERM": "xterm-ghostty"])) == .kitty)
        #expect(GraphicsDetection.fromEnvironment(Self.environment(["TERM": "foot-extra"])) == .sixel)
        #expect(GraphicsDetection.fromEnvironment(Self.environment(["TERM": "xterm-256color", "TERM_PROGRAM": "WezTerm"])) == .sixel)
        // Plain xterm or VTE: the environment cannot tell, so probe.
        #expect(GraphicsDetection.fromEnvironment(Self.environment(["TERM": "xterm-256color"])) == nil)
    }

    @Test func tmuxGetsSymbolsEvenInsideKitty() {
        #expect(GraphicsDetection.fromEnvironment(Self.environment(["TERM": "tmux-256color", "TMUX": "/tmp/tmux-0/default,1,0"])) == .symbols)
        #expect(GraphicsDetection.fromEnvironment(Self.environment(["TERM": "screen-256color", "KITTY_WINDOW_ID": "3"])) == .symbols)
        #expect(GraphicsDetection.fromEnvironment(Self.environment(["TERM": "xterm-kitty", "TMUX": "/tmp/tmux-0/default,1,0"])) == .symbols)
        #expect(GraphicsDetection.fromEnvironment(["TERM": "tmux-256color", "TMUX": "x", "LANG": "C"]) == .ascii)
    }

    @Test func resolveProbesOnlyWhenNeededAndForcedModesWin() {
        final class Count { var probes = 0 }
        let count = Count()
        let sixelReply = { () -> ProbeReply? in count.probes += 1; return ProbeReply(sixel: true, complete: true) }
        let tmux = Self.environment(["TERM": "tmux-256color", "TMUX": "x"])
        #expect(GraphicsDetection.resolve("auto", environment: Self.environment(["TERM": "xterm-256color"]), probe: sixelReply) == .sixel)
        #expect(count.probes == 1)
        #expect(GraphicsDetection.resolve("auto", environment: tmux, probe: sixelReply) == .symbols)
        #expect(GraphicsDetection.resolve("sixel", environment: tmux, probe: sixelReply) == .sixel)
        #expect(GraphicsDetection.resolve("kitty", environment: tmux, probe: sixelReply) == .kitty)
        #expect(count.probes == 1)
        #expect(GraphicsDetection.resolve("auto", environment: Self.environment(["TERM": "xterm"]), probe: { nil }) == .symbols)
        #expect(GraphicsDetection.resolve("auto", environment: ["TERM": "xterm", "LANG": "C"], probe: { ProbeReply(complete: true) }) == .ascii)
        #expect(GraphicsDetection.resolve("auto", environment: Self.environment(["TERM": "xterm"]), probe: { ProbeReply(kitty: true, complete: true) }) == .kitty)
        #expect(GraphicsDetection.resolve("iterm", environment: Self.utf8, probe: sixelReply) == nil)
    }
}
