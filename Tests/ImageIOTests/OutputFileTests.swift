import Foundation
import Testing
@testable import ImageIO
import RegularFiles

/// Reading only regular files, writing new files without ever replacing one, and sweeping what dead writers left.
@Suite struct OutputFileTests {
    static func folder() -> String {
        let path = NSTemporaryDirectory() + "imageio-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static let image = RGBImage(width: 2, height: 2, pixels: [UInt8](repeating: 200, count: 12))

    /// A process that has exited: its id names no running process (until the system reuses it).
    static func deadPID() throws -> pid_t {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/true")
        try process.run()
        process.waitUntilExit()
        return process.processIdentifier
    }

    @Test(.timeLimit(.minutes(10))) func onlyRegularFilesAreRead() throws {
        let folder = Self.folder()
        let fifo = folder + "/fifo.png"
        #expect(mkfifo(fifo, 0o600) == 0)
        let cases: [(String, String)] = [(fifo, "is a FIFO"), (folder, "is a folder"), ("/dev/zero", "is a device"), (folder + "/none.png", "no such file")]
        for (path, reason) in cases {
            let error = #expect(throws: RegularFile.Error.self) { try RegularFile.contents(path, limit: 1 << 20) }
            #expect(error?.description == "\(path): \(reason)" + (reason == "no such file" ? "" : ", not a regular file"))
            let pngError = #expect(throws: PNGFile.Error.self) { try PNGFile.read(path) }
            #expect(pngError?.description.hasPrefix("\(path): \(reason)") == true, "\(String(describing: pngError))")
        }
        let file = folder + "/a.bin"
        let bytes = (0..<5000).map { UInt8(truncatingIfNeeded: $0 * 31) }
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        #expect(try RegularFile.contents(file, limit: 5000) == bytes)
        let tooLarge = #expect(throws: RegularFile.Error.self) { try RegularFile.contents(file, limit: 4999) }
        #expect(tooLarge?.description.contains("5000 bytes, more than") == true)
    }

    @Test func writeNewNeverReplacesAFile() throws {
        let folder = Self.folder()
        let path = folder + "/x.png"
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: path))
        #expect(try PNGFile.writeNew(Self.image, to: path) == false)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "keep me")
        let taken = try PNGFile.writeNew(PNGFile.encode(Self.image), tries: 3) { $0 == 0 ? path : folder + "/x-\($0).png" }
        #expect(taken?.index == 1 && taken?.path == folder + "/x-1.png")
        #expect(try PNGFile.read(folder + "/x-1.png").image == Self.image)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == ["x-1.png", "x.png"])
    }

    /// 24 threads writing at once, each a different image, all asking for the same names: 24 files, each one whole
    /// image, and no temporary file left.
    @Test func concurrentWritersGetDistinctFiles() throws {
        let folder = Self.folder()
        let writers = 24
        final class Taken: @unchecked Sendable {
            let lock = NSLock()
            var paths: [Int: String] = [:]
        }
        let taken = Taken()
        DispatchQueue.concurrentPerform(iterations: writers) { i in
            let image = RGBImage(width: 2, height: 2, pixels: [UInt8](repeating: UInt8(i), count: 12))
            let written = try? PNGFile.writeNew(PNGFile.encode(image), tries: 100) { folder + "/out-\($0).png" }
            taken.lock.withLock { taken.paths[i] = written?.path }
        }
        #expect(taken.paths.count == writers && Set(taken.paths.values).count == writers)
        for (i, path) in taken.paths {
            #expect(try PNGFile.read(path).image.pixels == [UInt8](repeating: UInt8(i), count: 12), "\(path)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).count == writers)
    }

    @Test func partialNamesGiveTheirWriter() {
        #expect(PartialFiles.writer(ofPartial: ".00001-7-cat.png.1234-9f3a.partial") == 1234)
        #expect(PartialFiles.writer(ofPartial: ".sd3-7.png.42.partial") == 42)
        #expect(PartialFiles.writer(ofPartial: "sd3-7.png.42.partial") == nil)
        #expect(PartialFiles.writer(ofPartial: ".sd3-7.png.x42.partial") == nil)
        #expect(PartialFiles.writer(ofPartial: ".partial") == nil)
        #expect(PartialFiles.writer(ofPartial: ".a.99999999999999999999.partial") == nil)
    }

    /// A dead writer's old partial file goes; a running writer's, a fresh one, a link and other names stay.
    @Test func sweepRemovesOnlyDeadWritersOldFiles() throws {
        let folder = Self.folder()
        let dead = try Self.deadPID()
        let old = Date(timeIntervalSinceNow: -3600)
        func make(_ name: String, modified: Date = old) throws {
            try Data("x".utf8).write(to: URL(fileURLWithPath: folder + "/" + name))
            try FileManager.default.setAttributes([.modificationDate: modified], ofItemAtPath: folder + "/" + name)
        }
        try make(".a.png.\(dead)-1f.partial")
        try make(".b.png.\(dead).partial")
        try make(".c.png.\(getpid())-2e.partial")
        try make(".d.png.\(dead)-3d.partial", modified: Date())
        try make("e.png.\(dead).partial")
        try FileManager.default.createSymbolicLink(atPath: folder + "/.f.png.\(dead).partial", withDestinationPath: folder + "/e.png.\(dead).partial")
        let removed = PartialFiles.sweep(folder)
        #expect(removed.sorted() == [".a.png.\(dead)-1f.partial", ".b.png.\(dead).partial"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == [".c.png.\(getpid())-2e.partial", ".d.png.\(dead)-3d.partial",
                                                                                         ".f.png.\(dead).partial", "e.png.\(dead).partial"])
    }
}
