import Foundation

/// The temporary files atomic writers leave when their process dies between writing and renaming (kill -9,
/// power loss): `.NAME.PID-RANDOM.partial` (PNGFile) or `.NAME.PID.partial` (older writers, SafeTensorsWriter).
public enum PartialFiles {
    /// The writer's process id in a partial file's name, nil for any other name.
    public static func writer(ofPartial name: String) -> pid_t? {
        guard name.hasPrefix("."), name.hasSuffix(".partial") else { return nil }
        let stem = name.dropLast(".partial".count)
        guard let dot = stem.lastIndex(of: "."), dot > stem.startIndex else { return nil }
        let tag = stem[stem.index(after: dot)...]
        let digits = tag.prefix { $0 != "-" }
        guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return pid_t(digits)
    }

    /// Removes the partial files in `folder` whose writer is no longer running and that are older than `age`
    /// seconds (a live writer renames its file within a second of making it; the age also covers a writer in
    /// another PID namespace whose number means nothing here). Only regular files; returns the names removed.
    @discardableResult
    public static func sweep(_ folder: String, age: TimeInterval = 60, now: Date = Date()) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
        var removed: [String] = []
        for name in names {
            guard let pid = writer(ofPartial: name), pid > 0, !isRunning(pid) else { continue }
            let path = folder + "/" + name
            // attributesOfItem does not follow a symbolic link: a link named like a partial file is left alone.
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                  attributes[.type] as? FileAttributeType == .typeRegular,
                  let modified = attributes[.modificationDate] as? Date, now.timeIntervalSince(modified) >= age else { continue }
            if unlink(path) == 0 { removed.append(name) }
        }
        return removed
    }

    /// kill(pid, 0): ESRCH means no such process; EPERM means one runs that we may not signal.
    public static func isRunning(_ pid: pid_t) -> Bool {
        kill(pid, 0) == 0 || errno != ESRCH
    }
}
