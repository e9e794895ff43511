import Foundation

/// The foreign-format PNGs of scripts/fixtures/foreign_pngs.py (ImageMetadataTests owns them), for `sd3 recall`'s
/// command-line tests.
enum RecallFixtures {
    static let folder = Support.packageRoot + "/Tests/ImageMetadataTests/Fixtures/recall"
    static var expected: [String: [String: Any]] {
        let data = FileManager.default.contents(atPath: folder + "/expected.json") ?? Data()
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        return object?["files"] as? [String: [String: Any]] ?? [:]
    }

    static var formats: [String] { expected.filter { $0.value["error"] == nil }.keys.sorted() }
}
