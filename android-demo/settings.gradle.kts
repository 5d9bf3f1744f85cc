// The demo app for Android Studio / Gradle (android-demo/README.md). Built by
// .github/workflows/android.yml on a hosted runner; not built on the Linux machines of this project,
// which have no Android SDK (android-demo/build-here.sh builds what they can).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}
rootProject.name = "talking-head-demo"
include(":app")
