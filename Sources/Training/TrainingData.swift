import Foundation
import ImageIO
import RegularFiles
import SD3

/// A DreamBooth/kohya data folder: images (.png, .jpg, .jpeg) with same-name `.txt` captions, or one instance prompt
/// for those without. Each image is prepared as train_dreambooth_lora_sd3.py's DreamBoothDataset does with
/// `--center_crop` (by default; its own default, a random crop, is `randomCrop`) and without `--random_flip` (its
/// default): the shorter side resized to the resolution, the centre (or random) square cut out, then
/// ToTensor and Normalize([0.5], [0.5]). The resize is our Pillow-exact Lanczos by default (sharper than the
/// script's filter); `.bilinear` is the script's torchvision Resize(BILINEAR) on PIL, pixel for pixel. Each image is
/// first turned upright by its EXIF orientation, as the script's `exif_transpose` does.
public struct TrainingData: Sendable {
    public struct Example: Sendable {
        public let path: String
        public let caption: String
        /// [3, resolution, resolution] in [−1, 1].
        public let pixels: [Float]
    }

    public static let imageExtensions: Set<String> = ["png", "jpg", "jpeg"]
    /// The most bytes an image or caption file may have.
    public static let imageLimit = 256 << 20, captionLimit = 1 << 20

    public let folder: String
    public let resolution: Int
    public let filter: LanczosResize.Filter
    public let examples: [Example]
    /// Files neither an image nor a caption, by name: the caller says they were skipped.
    public let ignored: [String]

    /// Loads every image of `folder` (sorted by name; the script takes the folder's listing order), centre-cropped.
    /// Each failure is one line naming the file. `captionFiles` false: the .txt files are not read and every image
    /// takes the instance prompt (the script without `--caption_column`).
    public init(folder: String, resolution: Int, instancePrompt: String?, captionFiles: Bool = true, filter: LanczosResize.Filter = .lanczos) throws {
        try self.init(folder: folder, resolution: resolution, instancePrompt: instancePrompt, captionFiles: captionFiles, filter: filter,
                      offsets: { _, _ in nil })
    }

    /// The same with the script's random augmentations: its default random crop (RandomCrop.get_params' torch.randint
    /// draws for each image, in order, on `generator`: torch's global generator, which the script has used for the
    /// LoRA's initial weights) unless `randomCrop` is false, and `--random_flip` (Python's `random.random() < 0.5`
    /// per image, after `random.seed(seed)`) when `flipSeed` is given.
    public init(folder: String, resolution: Int, instancePrompt: String?, filter: LanczosResize.Filter = .lanczos,
                randomCrop: Bool, flipSeed: UInt64?, generator: inout TorchCPUGenerator) throws {
        var python = flipSeed.map(PythonRandom.init(seed:))
        try self.init(folder: folder, resolution: resolution, instancePrompt: instancePrompt, filter: filter,
                      flip: { python == nil ? false : python!.random() < 0.5 },
                      offsets: { w, h in randomCrop ? Self.randomOffsets(width: w, height: h, size: resolution, generator: &generator) : nil })
    }

    private init(folder: String, resolution: Int, instancePrompt: String?, captionFiles: Bool = true, filter: LanczosResize.Filter, flip: () -> Bool = { false },
                 offsets: (_ width: Int, _ height: Int) -> (top: Int, left: Int)?) throws {
        guard resolution > 0, resolution % 16 == 0 else {
            throw TrainingError.invalid("the resolution must be a positive multiple of 16, not \(resolution)")
        }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: folder).sorted() } catch {
            throw TrainingError.data(path: folder, reason: "cannot read the data folder (\((error as NSError).localizedDescription))")
        }
        // Captions by stem: `a.txt` or `a.TXT` for `a.png`.
        var images: [String] = [], captions: [String: String] = [:], ignored: [String] = []
        for name in names where !name.hasPrefix(".") {
            let ext = (name as NSString).pathExtension.lowercased()
            if Self.imageExtensions.contains(ext) {
                images.append(name)
            } else if ext == "txt" {
                captions[(name as NSString).deletingPathExtension] = name
            } else {
                ignored.append(name)
            }
        }
        guard !images.isEmpty else {
            throw TrainingError.data(path: folder, reason: "no images (.png, .jpg) in the data folder" + (names.isEmpty ? ", which is empty" : ""))
        }
        var examples: [Example] = []
        for name in images {
            let path = (folder as NSString).appendingPathComponent(name)
            let stem = (name as NSString).deletingPathExtension
            var caption = ""
            if captionFiles, let file = captions[stem] {
                caption = try Self.caption((folder as NSString).appendingPathComponent(file))
            }
            // The script: an empty custom caption falls back to the instance prompt.
            if caption.isEmpty {
                guard let instancePrompt, !instancePrompt.isEmpty else {
                    throw TrainingError.data(path: path, reason: captionFiles ? "no caption (\(stem).txt is missing or empty) and no --instance-prompt"
                                                                              : "no instance prompt for the images")
                }
                caption = instancePrompt
            }
            let image = try Self.image(path)
            guard min(image.width, image.height) >= resolution else {
                throw TrainingError.data(path: path, reason: "\(image.width)×\(image.height) is smaller than the resolution \(resolution)")
            }
            examples.append(Example(path: path, caption: caption,
                                    pixels: Self.prepare(image, resolution: resolution, filter: filter, flip: flip, offsets: offsets)))
        }
        (self.folder, self.resolution, self.filter, self.examples, self.ignored) = (folder, resolution, filter, examples, ignored)
    }

    /// A caption file's text, strictly UTF-8 (a leading byte-order mark dropped, as editors on Windows write one),
    /// with surrounding white space and new lines removed.
    static func caption(_ path: String) throws -> String {
        let bytes: [UInt8]
        do { bytes = try RegularFile.contents(path, limit: captionLimit, what: "caption file") } catch {
            throw TrainingError.data(path: path, reason: error.reason)
        }
        let body = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(bytes.dropFirst(3)) : bytes
        guard let text = String(validating: body, as: UTF8.self) else {
            throw TrainingError.data(path: path, reason: "the caption is not valid UTF-8")
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func image(_ path: String) throws -> RGBImage {
        let bytes: [UInt8]
        do { bytes = try RegularFile.contents(path, limit: imageLimit, what: "PNG or JPEG file") } catch {
            throw TrainingError.data(path: path, reason: error.reason)
        }
        // By content, not extension: a PNG named .jpg still loads.
        do { return try ImageFile.decode(bytes, name: (path as NSString).lastPathComponent, upright: true) } catch {
            throw TrainingError.data(path: path, reason: "unreadable image (\(error.description))")
        }
    }

    /// RandomCrop.get_params: no draw when the image is already the crop's size, else torch.randint(0, h − size + 1)
    /// then torch.randint(0, w − size + 1), each `random() mod range` (uniform_int_from_to below 2³²).
    public static func randomOffsets(width w: Int, height h: Int, size: Int, generator: inout TorchCPUGenerator) -> (top: Int, left: Int) {
        if w == size && h == size { return (0, 0) }
        let top = Int(UInt64(generator.random()) % UInt64(h - size + 1))
        let left = Int(UInt64(generator.random()) % UInt64(w - size + 1))
        return (top, left)
    }

    /// torchvision's Resize(int) size rule (`_compute_resized_output_size`): the shorter side becomes `size`, the
    /// longer `int(size · long / short)`; then the script's flip (asked after the resize) mirrors the columns; then the
    /// crop: `offsets` of the resized size, or CenterCrop's `int(round((h − size) / 2))` (round half to even).
    public static func prepare(_ image: RGBImage, resolution size: Int, filter: LanczosResize.Filter = .lanczos,
                               flip: () -> Bool = { false },
                               offsets: (_ width: Int, _ height: Int) -> (top: Int, left: Int)? = { _, _ in nil }) -> [Float] {
        let short = min(image.width, image.height), long = max(image.width, image.height)
        let newLong = Int(Double(size) * Double(long) / Double(short))
        let (w, h) = image.width <= image.height ? (size, newLong) : (newLong, size)
        var resized = LanczosResize.resize(image, width: w, height: h, filter: filter)
        if flip() {
            var mirrored = resized.pixels
            for y in 0..<h {
                for x in 0..<w {
                    for c in 0..<3 { mirrored[(y * w + x) * 3 + c] = resized.pixels[(y * w + (w - 1 - x)) * 3 + c] }
                }
            }
            resized.pixels = mirrored
        }
        let (top, left) = offsets(w, h) ?? (Int((Double(h - size) / 2).rounded(.toNearestOrEven)), Int((Double(w - size) / 2).rounded(.toNearestOrEven)))
        var out = [Float](repeating: 0, count: 3 * size * size)
        for y in 0..<size {
            for x in 0..<size {
                let i = ((y + top) * w + (x + left)) * 3
                for c in 0..<3 {
                    // ToTensor: p / 255; Normalize: (v − 0.5) / 0.5, float32.
                    let v = Float(resized.pixels[i + c]) / 255
                    out[(c * size + y) * size + x] = (v - 0.5) / 0.5
                }
            }
        }
        return out
    }
}
