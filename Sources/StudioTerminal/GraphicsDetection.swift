import StudioCore

/// What the terminal said to the probe (DA1 and the kitty graphics query); see docs/peers.md §3, Detection.
public struct ProbeReply: Sendable, Equatable {
    public var sixel = false
    public var kitty = false
    /// The DA1 reply arrived: every earlier reply has been read, the probe is over.
    public var complete = false
    /// The background colour, when the terminal answered OSC 11.
    public var background: RGB?

    public init(sixel: Bool = false, kitty: Bool = false, complete: Bool = false, background: RGB? = nil) {
        (self.sixel, self.kitty, self.complete, self.background) = (sixel, kitty, complete, background)
    }
}

/// `--graphics auto`: the environment first, then (when it cannot tell) a probe of the terminal. Pure functions,
/// so the rules are testable without a terminal; `TerminalProbe` does the I/O.
public enum GraphicsDetection {
    /// The kitty graphics query (a 1×1 RGB image that is only checked, `a=q`), the background colour query (OSC 11)
    /// and DA1 as the sentinel: terminals answer in order, so once the DA1 reply is in, a missing reply means no.
    public static let probeQuery = "\u{1B}_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\u{1B}\\\u{1B}]11;?\u{1B}\\\u{1B}[c"

    /// Parses the replies read so far. DA1 is `CSI ? Ps ; Ps … c`; sixel is supported when a parameter after the
    /// first is exactly 4 (chafa's handle_primary_device_attributes; "64" must not count). The kitty reply is
    /// `ESC _G i=31 ; OK ESC \`.
    public static func parse(_ bytes: [UInt8]) -> ProbeReply {
        var reply = ProbeReply()
        var i = 0
        while i < bytes.count {
            guard bytes[i] == 0x1B, i + 1 < bytes.count else { i += 1; continue }
            if bytes[i + 1] == UInt8(ascii: "_") {
                // APC … ST
                var end = i + 2
                while end + 1 < bytes.count, !(bytes[end] == 0x1B && bytes[end + 1] == UInt8(ascii: "\\")) { end += 1 }
                let body = String(decoding: bytes[(i + 2)..<min(end, bytes.count)], as: UTF8.self)
                if body.hasPrefix("G"), body.contains("i=31"), body.hasSuffix(";OK") { reply.kitty = true }
                i = end + 2
            } else if bytes[i + 1] == UInt8(ascii: "]") {
                // OSC … BEL or ST
                var end = i + 2
                while end < bytes.count, bytes[end] != 0x07, !(bytes[end] == 0x1B && end + 1 < bytes.count && bytes[end + 1] == UInt8(ascii: "\\")) {
                    end += 1
                }
                guard end < bytes.count else { break }
                if let colour = BackgroundTheme.parseReply(String(decoding: bytes[(i + 2)..<end], as: UTF8.self)) {
                    reply.background = colour
                }
                i = end + (bytes[end] == 0x07 ? 1 : 2)
            } else if bytes[i + 1] == UInt8(ascii: "["), i + 2 < bytes.count, bytes[i + 2] == UInt8(ascii: "?") {
                var end = i + 3
                while end < bytes.count, bytes[end] == UInt8(ascii: ";") || (0x30...0x39).contains(bytes[end]) { end += 1 }
                guard end < bytes.count else { break }
                if bytes[end] == UInt8(ascii: "c") {
                    let parameters = String(decoding: bytes[(i + 3)..<end], as: UTF8.self).split(separator: ";").map { Int($0) }
                    if parameters.dropFirst().contains(4) { reply.sixel = true }
                    reply.complete = true
                }
                i = end + 1
            } else {
                i += 1
            }
        }
        return reply
    }

    /// What the environment alone decides for `auto`; nil means "probe the terminal". Inside tmux (or screen) the
    /// answer is symbol art: pixel escapes need passthrough there, and a probe would ask the outer terminal
    /// through tmux, which answers for itself.
    public static func fromEnvironment(_ environment: [String: String]) -> GraphicsMode? {
        let text = GraphicsMode.detect(environment: environment)
        let term = environment["TERM"] ?? "", program = environment["TERM_PROGRAM"] ?? ""
        if term == "dumb" || term.isEmpty { return text }
        if insideMultiplexer(environment) { return text }
        if term == "xterm-kitty" || term == "xterm-ghostty" || program == "ghostty"
            || !(environment["KITTY_WINDOW_ID"] ?? "").isEmpty {
            return .kitty
        }
        if term.hasPrefix("foot") || term == "mlterm" || program == "WezTerm" { return .sixel }
        return nil
    }

    /// tmux or screen: a probe would be answered by the multiplexer, and a reply it sends late would reach the
    /// studio as typed keys.
    public static func insideMultiplexer(_ environment: [String: String]) -> Bool {
        let term = environment["TERM"] ?? "", program = environment["TERM_PROGRAM"] ?? ""
        return !(environment["TMUX"] ?? "").isEmpty || program == "tmux" || term.hasPrefix("tmux") || term.hasPrefix("screen")
    }

    /// The mode for a probe result: kitty graphics when the terminal answered the query, else sixel when DA1 lists
    /// it, else the text fallback. No reply at all (a timeout) also means the text fallback.
    public static func fromProbe(_ reply: ProbeReply?, environment: [String: String]) -> GraphicsMode {
        if let reply, reply.kitty { return .kitty }
        if let reply, reply.sixel { return .sixel }
        return GraphicsMode.detect(environment: environment)
    }

    /// `--graphics VALUE` to a mode: named modes are used as given (a forced protocol is sent even inside tmux),
    /// `auto` asks the environment, then `probe` (called at most once, before ncurses starts).
    public static func resolve(_ requested: String, environment: [String: String],
                               probe: () -> ProbeReply?) -> GraphicsMode? {
        if requested != "auto" { return GraphicsMode(rawValue: requested) }
        if let decided = fromEnvironment(environment) { return decided }
        return fromProbe(probe(), environment: environment)
    }
}
