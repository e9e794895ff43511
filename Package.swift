// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "SD3Studio",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "sd3", targets: ["sd3"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", exact: "0.6.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        // C system libraries (Debian packages installed by `make deps`).
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL"),
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .systemLibrary(name: "CNcurses", path: "Sources/CNcurses"),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG"),
        .systemLibrary(name: "CChafa", path: "Sources/CChafa", pkgConfig: "chafa"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CJPEG", path: "Sources/CJPEG"),
        .systemLibrary(name: "CSSL", path: "Sources/CSSL"),

        // The one reader of files named by users, folders and metadata: regular files only, size-limited.
        .target(name: "RegularFiles"),
        // The hot loops (attention, activations, norms, bf16 rounding) in C, compiled for AVX-512, AVX2 and baseline
        // x86-64 in one build and chosen at start-up; optimised in debug builds too, since the tests run them.
        .target(name: "Kernels", cSettings: [.unsafeFlags(["-O2"])]),
        .target(name: "Tensors", dependencies: ["CDNNL", "CBLAS", "Kernels"]),
        .target(name: "SafeTensors", dependencies: ["Tensors", "RegularFiles"]),
        // SHA-256: blobs verified as they are pulled, and the hashes recorded with images (model, LoRA, init image).
        .target(name: "Checksums"),
        // zlib and gzip streams (the CLIP vocabulary, compressed PNG text).
        .target(name: "Inflate", dependencies: ["CZlib"]),
        .target(name: "Tokenizers", dependencies: ["Inflate", "RegularFiles"], resources: [.copy("Resources/clip-bpe-merges.txt.gz")]),
        .target(name: "ImageIO", dependencies: ["CPNG", "CJPEG", "Inflate", "RegularFiles"]),
        // What a PNG says about how it was made: our JSON record and A1111 text written, and every tool's text chunks read
        // back (A1111/Forge, ComfyUI, InvokeAI, Fooocus, NovelAI, stable-diffusion.cpp, SwarmUI, Draw Things).
        // Optimised in debug builds too: its fuzz suites parse 10,000 mutations of every sample PNG (up to 21 KB of JSON).
        .target(name: "ImageMetadata", dependencies: ["ImageIO"], swiftSettings: [.unsafeFlags(["-O"])]),
        // The Hugging Face cache's folder names, shared by its writer (Hub) and its reader (SD3).
        .target(name: "HubCacheNames"),
        .target(name: "SD3", dependencies: ["Checksums", "ImageMetadata", "Tensors", "SafeTensors", "Tokenizers", "ImageIO", "RegularFiles", "HubCacheNames"]),
        // LoRA training: backward through the frozen MMDiT (Tensors' forward ops, our gradients), the script's loss, and
        // `sd3 train-lora`'s loop around it (timestep sampling, AdamW, lr schedules, data, output and checkpoints).
        .target(name: "Training", dependencies: ["Checksums", "ImageMetadata", "SD3", "Tensors", "Kernels", "SafeTensors", "ImageIO", "RegularFiles"]),
        // `sd3 models pull`: the Hugging Face Hub client (URLSession) and the cache it writes.
        .target(name: "Hub", dependencies: ["Checksums", "HubCacheNames"]),
        // ComfyUI servers as backends: its HTTP API and WebSocket over our own sockets (OpenSSL for TLS).
        .target(name: "ComfyUI", dependencies: ["Checksums", "ImageMetadata", "SD3", "ImageIO", "SafeTensors", "RegularFiles", "CSSL"]),
        // The studio as values: state, reducer, render, and the files it owns; no engine runs and no network here.
        .target(name: "StudioCore", dependencies: ["ImageMetadata", "SD3", "ComfyUI", "ImageIO", "Tensors", "RegularFiles", .product(name: "GRDB", package: "GRDB.swift"),
                                                   .product(name: "TOMLKit", package: "TOMLKit")]),
        // The studio's effects: the session that runs the reducer's effects (the engine, ComfyUI servers, pulls, training, files).
        .target(name: "StudioRuntime", dependencies: ["ImageMetadata", "StudioCore", "SD3", "Hub", "ComfyUI", "ImageIO", "Tensors", "Training"]),
        // Seeded mutations for the parsers' fuzz suites (tests only; `make fuzz` runs them longer).
        .target(name: "FuzzSupport"),
        // The tests' fake servers' listening socket (tests only).
        .target(name: "LoopbackServer"),
        // Polls of files, processes, screens and fake servers' logs, charging only the time a test ran (tests only).
        .target(name: "PollSupport"),
        .target(name: "StudioTerminal", dependencies: ["StudioCore", "StudioRuntime", "ImageIO", "CNcurses", "CChafa"]),
        .executableTarget(
            name: "sd3",
            dependencies: [
                "Tensors", "SafeTensors", "Tokenizers", "ImageIO", "ImageMetadata", "SD3", "Training", "Hub", "ComfyUI", "StudioCore", "StudioRuntime", "StudioTerminal", "RegularFiles",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "SafeTensors", "Kernels"], resources: [.copy("Fixtures")]),
        .testTarget(name: "SafeTensorsTests", dependencies: ["FuzzSupport", "SafeTensors", "Tensors"]),
        .testTarget(name: "ChecksumsTests", dependencies: ["Checksums"]),
        .testTarget(name: "TokenizersTests", dependencies: ["FuzzSupport", "Inflate", "Tokenizers"], resources: [.copy("Fixtures")]),
        .testTarget(name: "SD3Tests", dependencies: ["Checksums", "ImageMetadata", "ImageIO", "Tensors", "FuzzSupport", "SD3", "SafeTensors", "Training"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ImageIOTests", dependencies: ["FuzzSupport", "ImageIO", "SafeTensors", "RegularFiles"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ImageMetadataTests", dependencies: ["FuzzSupport", "ImageMetadata", "ImageIO"], resources: [.copy("Fixtures")]),
        .testTarget(name: "StudioCoreTests", dependencies: ["ImageMetadata", "CZlib", "FuzzSupport", "PollSupport", "StudioCore", "StudioRuntime", "ComfyUI", "SD3", "ImageIO", .product(name: "GRDB", package: "GRDB.swift")],
                    exclude: ["Snapshots", "Fixtures"]),
        .testTarget(name: "StudioTerminalTests", dependencies: ["StudioTerminal", "StudioCore", "ImageIO"]),
        // The studio's pull (F8) is tested here, against the same loopback hub.
        .testTarget(name: "HubTests", dependencies: ["Checksums", "ImageIO", "FuzzSupport", "LoopbackServer", "PollSupport", "Hub", "SD3", "StudioCore", "StudioRuntime"]),
        .testTarget(name: "ComfyUITests", dependencies: ["ImageMetadata", "ComfyUI", "LoopbackServer", "PollSupport", "SD3", "ImageIO", "CSSL"], resources: [.copy("Fixtures")]),
        .testTarget(name: "TrainingTests", dependencies: ["ImageMetadata", "FuzzSupport", "Training", "SD3", "SafeTensors", "ImageIO", "Tensors"], resources: [.copy("Fixtures")]),
        .testTarget(name: "SystemLibrariesTests", dependencies: ["CNcurses", "CPNG"]),
    ]
)
