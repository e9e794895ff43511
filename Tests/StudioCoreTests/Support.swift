import Foundation
import ImageIO
import ImageMetadata
import SD3
@testable import StudioCore
import Testing

enum Support {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let tinyModel = packageRoot + "/Tests/SD3Tests/Fixtures/tiny-sd3"

    static func state(prompt: String = "") -> StudioState {
        var state = StudioState(model: "/models/tiny-sd3", randomSeed: 42)
        state.set(.prompt, prompt)
        return state
    }

    /// A 16×16 gradient, for previews.
    static let image: RGBImage = {
        var pixels: [UInt8] = []
        for y in 0..<16 { for x in 0..<16 { pixels += [UInt8(x * 16), UInt8(y * 16), 128] } }
        return RGBImage(width: 16, height: 16, pixels: pixels)
    }()

    static func metadata(seed: UInt64 = 7, prompt: String = "a red circle") -> ImageMetadata {
        var p = GenerationParameters(prompt: prompt)
        (p.width, p.height, p.steps, p.seed) = (16, 16, 3, seed)
        return ImageMetadata(parameters: p, model: "/models/tiny-sd3", t5: true, shift: 3, precision: "fp32", seconds: 1.5)
    }

    /// Plants two old `.partial` files in `folder`: one of a writer that has exited (`/bin/true`, waited for) and one of
    /// this live process; names are `.STEM.png.PID-TAG.partial`. Returns (dead, live).
    static func plantPartials(in folder: String, dead deadStem: String, live liveStem: String) throws -> (dead: String, live: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/true")
        try process.run()
        process.waitUntilExit()
        let dead = ".\(deadStem).png.\(process.processIdentifier)-1a.partial", live = ".\(liveStem).png.\(getpid())-2b.partial"
        for name in [dead, live] {
            try Data("half".utf8).write(to: URL(fileURLWithPath: folder + "/" + name))
            try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: folder + "/" + name)
        }
        return (dead, live)
    }

    static func temporaryFolder() -> String {
        let path = NSTemporaryDirectory() + "studio-tests-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

extension StudioState {
    /// The fields from a config's [defaults] alone, through the settings resolver, as the studio starts them.
    mutating func apply(_ d: ConfigFile.Defaults) {
        apply(GenerationSettings([GenerationSettings.Layer(.config, nil, SettingsLayer(config: d))]), only: [.config])
        applyConfigExtras(d)
    }

    /// The fields from a model's defaults alone, through the settings resolver.
    mutating func apply(_ d: ModelDefaults) {
        apply(GenerationSettings([GenerationSettings.Layer(.model, nil, SettingsLayer(d))]), only: [.model])
    }
}

/// The panel keys, as the binding table makes them (the studio has one `Action.open` for every panel), under the
/// names the tests read best with.
extension Action {
    static var showFavorites: Action { key(.function(3)) }
    static var showHistory: Action { key(.function(4)) }
    static var openRecall: Action { key(.ctrl("o")) }
    static var showModels: Action { key(.function(8)) }
    static var showLoras: Action { key(.function(9)) }
    static var showBackends: Action { key(.function(11)) }
    static var showTraining: Action { key(.function(12)) }
    static var showSources: Action { key(.ctrl("x")) }

    private static func key(_ key: Key) -> Action {
        guard let action = Bindings.action(for: key) else { fatalError("\(key.name) is bound to nothing") }
        return action
    }

    /// The panel type an `open` action opens, nil for other actions.
    var opensPanel: (any OverlayPanel.Type)? {
        guard case let .open(opening) = self else { return nil }
        return type(of: opening.panel)
    }
}
