public enum SD3 { public static let version = "0.1.0" }
