import ImageIO
import SD3

/// How seed exploration renders its drafts (config `[explore]`, `sd3 studio --explore-*`).
public struct DraftSettings: Sendable, Equatable {
    /// Seeds in the grid: 4, 9 or 16 (a square grid).
    public var count = 4
    /// Steps of a draft; a refinement with fewer steps caps it (the draft is then the refinement itself).
    public var steps = 8
    /// Draft side = this × the full side, to the nearest multiple of `sizeMultiple`. 1 by default: a draft at the
    /// refinement's size starts from the same noise (the seed's latents have the image's shape), so its few steps
    /// follow the refinement's path and land on its composition; a smaller draft starts from other noise, and the
    /// demo model (trained at 64×64 only) draws nothing like the refinement at 32×32. On the demo's 40 held-out
    /// captions, drafts at 0.5 read the refinement's shape, colour and position 30% of the time, at 1 97.5%
    /// (scripts/demo-model/draft_agreement.py).
    public var scale = 1.0
    /// What finishes a draft: TAESD3 when the studio has one (about a second at 512², a tenth of the VAE's time), else the VAE.
    /// The refinement of the pick always uses the VAE.
    public var decoder: ImageDecoder = .vae

    public static let counts = [4, 9, 16]

    /// The steps of a draft of a `full`-step refinement.
    public func steps(full: Int) -> Int { max(1, min(steps, full)) }
    /// SD3's sides are multiples of 16 (VAE factor 8 × patch 2); smaller multiples of some test models divide it.
    public static let sizeMultiple = 16

    public init() {}

    /// The draft side for a full side: scaled, rounded to the nearest multiple of 16, at least 16 and at most the full side.
    public func side(_ full: Int) -> Int {
        let m = Self.sizeMultiple
        let rounded = Int((Double(full) * scale / Double(m)).rounded()) * m
        return max(m, min(rounded, max(m, full)))
    }
}

/// A grid of draft renders of one request, one seed each (F6): each cell fills in as its generation finishes;
/// arrows pick one, Enter renders it at the full settings ("refine"), Esc leaves.
public struct Exploration: Sendable, Equatable {
    /// The full-settings request the grid was made from (its seed is the first cell's).
    public var base: GenerationRequest
    public var seeds: [UInt64]
    public var images: [RGBImage?]
    public var selected = 0
    /// The cell being rendered now, and its latest x0 preview.
    public var rendering: Int?
    public var preview: RGBImage?
    public var draft: DraftSettings
    /// Seconds spent on the finished cells.
    public var seconds = 0.0

    public init(base: GenerationRequest, draft: DraftSettings) {
        self.base = base
        self.draft = draft
        seeds = (0..<UInt64(draft.count)).map { base.parameters.seed &+ $0 }
        images = Array(repeating: nil, count: draft.count)
    }

    /// Cells per row (and rows): the grid is square.
    public var side: Int {
        var n = 1
        while n * n < seeds.count { n += 1 }
        return n
    }

    public var draftWidth: Int { draft.side(base.parameters.width) }
    public var draftHeight: Int { draft.side(base.parameters.height) }
    public var draftSteps: Int { draft.steps(full: base.parameters.steps) }

    /// The draft request of cell `index`: the base request at the draft size and steps, with that cell's seed.
    public func request(_ index: Int) -> GenerationRequest {
        var request = base
        request.parameters.seed = seeds[index]
        request.parameters.width = draftWidth
        request.parameters.height = draftHeight
        request.parameters.steps = draftSteps
        request.parameters.decoder = draft.decoder
        return request
    }

    /// The full-settings request of the picked cell, decoded by the VAE.
    public var refinement: GenerationRequest {
        var request = base
        request.parameters.seed = seeds[selected]
        request.parameters.decoder = .vae
        return request
    }

    public var finishedCount: Int { images.filter { $0 != nil }.count }

    /// Moves the selection by (dx, dy) cells, staying inside the grid.
    public mutating func move(dx: Int, dy: Int) {
        let n = side
        let column = min(n - 1, max(0, selected % n + dx)), row = min(n - 1, max(0, selected / n + dy))
        selected = min(seeds.count - 1, row * n + column)
    }
}
