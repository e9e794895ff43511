/// Which model opens when several places name one: the one rule the commands and the studio share.
public enum ModelChoice {
    /// `given` (a flag, or a recipe's or recalled PNG's model: the caller's own first choices), else `$SD3_MODEL` when it
    /// is not empty, else the config file's `model` (`~` expanded), else the demo model.
    public static func resolve(given: String?, configured: String?, environment: [String: String]) -> String? {
        given ?? fromEnvironment(environment) ?? configured.map { expandingTilde($0, environment: environment) } ?? DemoModel.locate()
    }

    /// The models a list shows first, in that order and once each: `$SD3_MODEL`, the config's model, the demo model.
    public static func listed(configured: String?, environment: [String: String]) -> [String] {
        var seen = Set<String>()
        let models = [fromEnvironment(environment), configured.map { expandingTilde($0, environment: environment) }, DemoModel.locate()]
        return models.compactMap { $0 }.filter { seen.insert($0).inserted }
    }

    static func fromEnvironment(_ environment: [String: String]) -> String? {
        environment["SD3_MODEL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    static func expandingTilde(_ path: String, environment: [String: String]) -> String {
        guard path == "~" || path.hasPrefix("~/"), let home = environment["HOME"] else { return path }
        return home + path.dropFirst()
    }
}
