import Foundation
import ImageIO
import SafeTensors
import SD3
import Testing
@testable import Training

/// The data folder: images with same-name captions, the script's resize-then-centre-crop, and one line per bad input.
@Suite struct TrainingDataTests {
    static func image(_ width: Int, _ height: Int) -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let i = (y * width + x) * 3
                (pixels[i], pixels[i + 1], pixels[i + 2]) = (UInt8(x * 255 / max(1, width - 1)), UInt8(y * 255 / max(1, height - 1)), UInt8((x * 7 + y * 3) % 256))
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    static func write(_ folder: String, _ name: String, _ bytes: [UInt8]) {
        FileManager.default.createFile(atPath: folder + "/" + name, contents: Data(bytes))
    }

    static func failure(_ folder: String, resolution: Int = 32, prompt: String? = nil) -> String {
        do {
            _ = try TrainingData(folder: folder, resolution: resolution, instancePrompt: prompt)
            return "loaded"
        } catch { return "\(error)" }
    }

    @Test func loadsImagesAndCaptions() throws {
        let folder = LoraOutputTests.folder("data-good")
        Self.write(folder, "a.png", try PNGFile.encode(Self.image(40, 32)))
        Self.write(folder, "a.txt", Array("  a photo of sks dog\n".utf8))
        Self.write(folder, "b.png", try PNGFile.encode(Self.image(32, 50)))
        Self.write(folder, "c.png", try PNGFile.encode(Self.image(32, 32)))
        Self.write(folder, "c.txt", Array("\n".utf8))
        Self.write(folder, "D.PNG", try PNGFile.encode(Self.image(32, 32)))
        Self.write(folder, "D.TXT", [0xEF, 0xBB, 0xBF] + Array("a BOM first\r\n".utf8))
        Self.write(folder, "notes.md", Array("not an image".utf8))
        let data = try TrainingData(folder: folder, resolution: 32, instancePrompt: "sks dog")
        #expect(data.examples.map(\.caption) == ["a BOM first", "a photo of sks dog", "sks dog", "sks dog"])
        #expect(data.ignored == ["notes.md"])
        #expect(data.examples.allSatisfy { $0.pixels.count == 3 * 32 * 32 && $0.pixels.allSatisfy { abs($0) <= 1 } })
        #expect(Self.failure(folder).hasSuffix("b.png: no caption (b.txt is missing or empty) and no --instance-prompt"))
        // The random crop draws two numbers for each image that is not already square at the resolution (a and b).
        var generator = TorchCPUGenerator(seed: 1), expected = TorchCPUGenerator(seed: 1)
        let random = try TrainingData(folder: folder, resolution: 32, instancePrompt: "sks dog", randomCrop: true, flipSeed: nil, generator: &generator)
        for _ in 0..<4 { _ = expected.random() }
        #expect(random.examples.count == 4 && generator.snapshot == expected.snapshot)
        // One instance prompt for every image (the studio's caption choice): the .txt files are not read.
        let instance = try TrainingData(folder: folder, resolution: 32, instancePrompt: "sks dog", captionFiles: false)
        #expect(instance.examples.map(\.caption) == ["sks dog", "sks dog", "sks dog", "sks dog"] && instance.ignored == ["notes.md"])
        #expect(throws: TrainingError.data(path: folder + "/D.PNG", reason: "no instance prompt for the images")) {
            try TrainingData(folder: folder, resolution: 32, instancePrompt: nil, captionFiles: false)
        }
    }

    /// Shorter side to the resolution (longer int(size · long / short)), then the centre, offsets rounded half to even.
    @Test func resizeThenCentreCrop() {
        let source = Self.image(100, 64)
        let prepared = TrainingData.prepare(source, resolution: 32)
        let resized = LanczosResize.resize(source, width: 50, height: 32)
        // (50 − 32) / 2 = 9 columns off the left.
        for (c, y, x) in [(0, 0, 0), (1, 31, 31), (2, 10, 17)] {
            let byte = resized.pixels[(y * 50 + x + 9) * 3 + c]
            #expect(prepared[(c * 32 + y) * 32 + x] == (Float(byte) / 255 - 0.5) / 0.5)
        }
        // 33 wide: (33 − 32) / 2 = 0.5 rounds to 0, as Python's round does.
        let odd = Self.image(33, 32)
        #expect(TrainingData.prepare(odd, resolution: 32)[0] == (Float(odd.pixels[0]) / 255 - 0.5) / 0.5)
    }

    /// The script's transform chain (scripts/fixtures/lora_data.py: torchvision 0.29.2 Resize + CenterCrop + ToTensor
    /// + Normalize on Pillow 13), bit for bit with either filter.
    @Test func matchesTorchvisionsTransforms() throws {
        let reference = try SafeTensorsFile(path: Bundle.module.url(forResource: "Fixtures/lora_data", withExtension: "safetensors")!.path)
        let cases = try JSONSerialization.jsonObject(with: Data(reference.metadata["cases"]!.utf8)) as! [[Int]]
        for (index, c) in cases.enumerated() {
            for filter in LanczosResize.Filter.allCases {
                let ours = TrainingData.prepare(Self.image(c[0], c[1]), resolution: c[2], filter: filter)
                let theirs = try reference.tensor("case\(index).\(filter.rawValue)").data
                let differing = zip(ours, theirs).filter { $0 != $1 }.count
                #expect(ours.count == theirs.count && differing == 0, "\(c) \(filter): \(differing) of \(theirs.count) values differ")
            }
        }
    }

    /// The script's default random crop: torch.randint draws on the global generator, image after image.
    @Test func randomCropDrawsAsTorchvision() throws {
        let reference = try SafeTensorsFile(path: Bundle.module.url(forResource: "Fixtures/lora_data", withExtension: "safetensors")!.path)
        let cases = try JSONSerialization.jsonObject(with: Data(reference.metadata["cases"]!.utf8)) as! [[Int]]
        var generator = TorchCPUGenerator(seed: 5)
        for (index, c) in cases.enumerated() {
            let ours = TrainingData.prepare(Self.image(c[0], c[1]), resolution: c[2], filter: .bilinear,
                                            offsets: { w, h in TrainingData.randomOffsets(width: w, height: h, size: c[2], generator: &generator) })
            #expect(ours == (try reference.tensor("random\(index)")).data, "\(c) random crop")
        }
        #expect(generator.randn([3]) == (try reference.tensor("random.after")).data)
    }

    /// `--random_flip`: Python's random after random.seed(seed), one draw per image, the flip before the crop.
    @Test func randomFlipDrawsAsPython() throws {
        let reference = try SafeTensorsFile(path: Bundle.module.url(forResource: "Fixtures/lora_data", withExtension: "safetensors")!.path)
        for seed: UInt64 in [0, 42, 1 << 40] {
            var python = PythonRandom(seed: seed)
            let raw = reference.bytes(reference.info("python64.\(seed)")!)
            let expected = (0..<raw.count / 8).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self) }
            #expect((0..<expected.count).map { _ in python.random() } == expected, "seed \(seed)")
        }
        let cases = try JSONSerialization.jsonObject(with: Data(reference.metadata["cases"]!.utf8)) as! [[Int]]
        var python = PythonRandom(seed: 5)
        var generator = TorchCPUGenerator(seed: 5)
        for (index, c) in cases.enumerated() {
            let ours = TrainingData.prepare(Self.image(c[0], c[1]), resolution: c[2], filter: .bilinear, flip: { python.random() < 0.5 },
                                            offsets: { w, h in TrainingData.randomOffsets(width: w, height: h, size: c[2], generator: &generator) })
            #expect(ours == (try reference.tensor("flip\(index)")).data, "\(c) random flip and crop")
        }
    }

    @Test func badInputIsOneLineEach() throws {
        let missing = LoraOutputTests.folder("data-missing") + "/nothing-here"
        #expect(Self.failure(missing).hasPrefix("\(missing): cannot read the data folder"))
        let empty = LoraOutputTests.folder("data-empty")
        #expect(Self.failure(empty) == "\(empty): no images (.png, .jpg) in the data folder, which is empty")
        let onlyText = LoraOutputTests.folder("data-text")
        Self.write(onlyText, "readme.txt", Array("hi".utf8))
        #expect(Self.failure(onlyText) == "\(onlyText): no images (.png, .jpg) in the data folder")
        let small = LoraOutputTests.folder("data-small")
        Self.write(small, "tiny.png", try PNGFile.encode(Self.image(64, 48)))
        #expect(Self.failure(small, resolution: 64, prompt: "x") == "\(small)/tiny.png: 64×48 is smaller than the resolution 64")
        let badCaption = LoraOutputTests.folder("data-utf8")
        Self.write(badCaption, "a.png", try PNGFile.encode(Self.image(32, 32)))
        Self.write(badCaption, "a.txt", [0x61, 0xFF, 0xFE, 0x62])
        #expect(Self.failure(badCaption, prompt: "x") == "\(badCaption)/a.txt: the caption is not valid UTF-8")
        let broken = LoraOutputTests.folder("data-broken")
        Self.write(broken, "a.jpg", Array("this is not a jpeg".utf8))
        let message = Self.failure(broken, prompt: "x")
        #expect(message.hasPrefix("\(broken)/a.jpg: unreadable image") && !message.contains("\n"), "\(message)")
        #expect(Self.failure(empty, resolution: 30).contains("multiple of 16"))
        for message in [Self.failure(missing), Self.failure(small, resolution: 64, prompt: "x")] { #expect(!message.contains("\n")) }
    }
}
