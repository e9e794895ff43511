import ArgumentParser
import Foundation
import Hub
import SD3

/// `sd3 models pull`: a hub repo into the Hugging Face cache, where `--model REPO_ID` and huggingface_hub both find it.
struct PullCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Download a model repository from the Hugging Face Hub into its cache ($HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub), resumably.")

    @Argument(help: "The repository, e.g. stabilityai/stable-diffusion-3-medium-diffusers.") var repo: String
    @Option(help: "Branch or tag (letters, digits, '-', '_', '.', '/'; no '..') or a 40-hex commit.") var revision = "main"
    @Option(parsing: .upToNextOption, help: "Only files matching these patterns (fnmatch, as huggingface_hub's allow_patterns; 'vae/' means the folder).")
    var include: [String] = []
    @Flag(help: "Skip the T5 text encoder (text_encoder_3/, tokenizer_3/): 9.5 GB less for SD3 Medium.") var noT5 = false
    @Flag(help: "List the files and sizes that would be fetched, and fetch nothing.") var dryRun = false
    @Option(help: "Hub access token (else $HF_TOKEN, else the file `huggingface-cli login` wrote). Never printed.") var token: String?
    @Option(help: "Files downloaded at once (1 to 64).") var parallel = 4

    func run() async throws {
        guard HuggingFaceCache.isRepoID(repo) else { throw ValidationError("'\(repo)' is not a repo id (ORG/NAME)") }
        let environment = ProcessInfo.processInfo.environment
        var options = PullOptions()
        options.revision = revision
        options.include = include
        options.skipT5 = noT5
        options.parallel = parallel
        let root = HuggingFaceCache(environment: environment).roots[0]
        let pull = ModelPull(repo: repo, options: options, settings: HubSettings(token: token, environment: environment), cacheRoot: root)
        // HubError's one-line descriptions reach the user as "Error: …" (they never hold the token).
        let plan = try await pull.plan()
        if dryRun { return describe(plan) }
        log("pulling \(repo) at \(plan.info.commit.prefix(12)): \(plan.files.count) files, \(PullProgress.bytes(plan.bytesToFetch)) to fetch into \(pull.layout.folder)")
        let progress = PullProgress(total: plan.bytesToFetch, files: plan.files.filter { $0.state != .cached }.count) { line in
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
        }
        // The progress line has no newline of its own: end it before the snapshot path or the error.
        let endLine = { if plan.bytesToFetch > 0 { FileHandle.standardError.write(Data("\n".utf8)) } }
        let snapshot: String
        do { snapshot = try await pull.run(plan, progress: progress) } catch { endLine(); throw error }
        endLine()
        print(snapshot)
    }

    func describe(_ plan: PullPlan) {
        for (file, state) in plan.files {
            let note: String
            switch state {
            case .cached: note = "cached"
            case .partial(let have): note = "resume from \(PullProgress.bytes(have))"
            case .missing: note = "fetch"
            }
            print("\(file.path)  \(PullProgress.bytes(file.size))  \(note)")
        }
        print("\(plan.files.count) files, \(PullProgress.bytes(plan.totalBytes)) in all, \(PullProgress.bytes(plan.bytesToFetch)) to fetch (commit \(plan.info.commit))")
    }
}
