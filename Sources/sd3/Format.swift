import Foundation

/// Human-readable counts for terminal output: 2_028_328_000 → "2.03 B", bytes in decimal units.
enum Format {
    static func count(_ n: Int) -> String {
        let d = Double(n)
        switch d {
        case 1e9...: return String(format: "%.2f B", d / 1e9)
        case 1e6...: return String(format: "%.2f M", d / 1e6)
        case 1e3...: return String(format: "%.1f K", d / 1e3)
        default: return "\(n)"
        }
    }

    static func bytes(_ n: Int) -> String {
        let d = Double(n)
        switch d {
        case 1e9...: return String(format: "%.2f GB", d / 1e9)
        case 1e6...: return String(format: "%.2f MB", d / 1e6)
        case 1e3...: return String(format: "%.1f kB", d / 1e3)
        default: return "\(n) B"
        }
    }
}
