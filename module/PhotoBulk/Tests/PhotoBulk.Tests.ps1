# Pester 5 tests for the PhotoBulk module that need no server: the manifest, help, the Windows PowerShell 5.1
# syntax check and the exact requests the module sends (Invoke-PhotoBulkRpc mocked; tests/sidecar replays the same
# fixtures against the real sidecar). PhotoBulk.Integration.Tests.ps1 runs the module for real.
BeforeAll {
    $script:ModuleDir = Split-Path -Parent $PSScriptRoot
    $script:ModulePath = Join-Path $script:ModuleDir 'PhotoBulk.psd1'
    $script:RepoRoot = Split-Path -Parent (Split-Path -Parent $script:ModuleDir)
    $script:ModuleFixtures = Join-Path $script:RepoRoot 'tests/sidecar/fixtures/module'
    $script:Work = Join-Path ([IO.Path]::GetTempPath()) ('photobulk-pester-' + [guid]::NewGuid().ToString('N').Substring(0, 8))
    $null = New-Item -ItemType Directory -Force -Path $script:Work
    Import-Module $script:ModulePath -Force
}

AfterAll {
    Remove-Module PhotoBulk -ErrorAction SilentlyContinue
    Remove-Item -LiteralPath $script:Work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'The module' {
    It 'imports and exports exactly its four cmdlets' {
        (Get-Command -Module PhotoBulk).Name | Sort-Object | Should -Be @('Get-PhotoReport', 'Remove-PhotoBulk', 'Restore-PhotoBulk', 'Set-PhotoBulk')
        $m = Test-ModuleManifest -Path $script:ModulePath
        $m.CompatiblePSEditions | Should -Contain 'Desktop'
        $m.CompatiblePSEditions | Should -Contain 'Core'
        Get-Command -Module PhotoBulk -Name 'Invoke-PhotoBulkRpc' -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }
    It 'stays thin: under 500 lines of PowerShell code (help and comments not counted) outside the tests' {
        $files = Get-ChildItem -Path $script:ModuleDir -Recurse -Include '*.ps1', '*.psm1', '*.psd1' | Where-Object { $_.FullName -notmatch 'Tests' }
        $lines = 0
        foreach ($f in $files) {
            $tokens = $null; $errors = $null
            $null = [System.Management.Automation.Language.Parser]::ParseFile($f.FullName, [ref]$tokens, [ref]$errors)
            $code = $tokens | Where-Object { $_.Kind -notin 'Comment', 'NewLine', 'LineContinuation', 'EndOfInput' }
            $lines += @($code | ForEach-Object { $_.Extent.StartLineNumber } | Sort-Object -Unique).Count
        }
        $lines | Should -BeLessThan 500
    }
    It 'Get-Help <Name> -Full documents every parameter and has examples' -ForEach @(
        @{ Name = 'Set-PhotoBulk' }, @{ Name = 'Get-PhotoReport' }, @{ Name = 'Remove-PhotoBulk' }, @{ Name = 'Restore-PhotoBulk' }
    ) {
        $help = Get-Help $Name -Full
        $help.Synopsis | Should -Not -BeNullOrEmpty
        $help.Description | Should -Not -BeNullOrEmpty
        @($help.Examples.Example).Count | Should -BeGreaterOrEqual 2
        $common = [System.Management.Automation.PSCmdlet]::CommonParameters + [System.Management.Automation.PSCmdlet]::OptionalCommonParameters
        foreach ($p in (Get-Command $Name).Parameters.Keys | Where-Object { $_ -notin $common }) {
            $text = (Get-Help $Name -Parameter $p).Description | Out-String
            $text.Trim() | Should -Not -BeNullOrEmpty -Because "-$p of $Name needs a description"
        }
    }
    It 'every example of <Name> parses' -ForEach @(
        @{ Name = 'Set-PhotoBulk' }, @{ Name = 'Get-PhotoReport' }, @{ Name = 'Remove-PhotoBulk' }, @{ Name = 'Restore-PhotoBulk' }
    ) {
        foreach ($ex in @((Get-Help $Name -Full).Examples.Example)) {
            $tokens = $null; $errors = $null
            $null = [System.Management.Automation.Language.Parser]::ParseInput([string]$ex.Code, [ref]$tokens, [ref]$errors)
            $errors | Should -BeNullOrEmpty -Because $ex.Code
            ([string]$ex.Code) | Should -Match 'PhotoBulk|PhotoReport'
        }
    }
    It 'formats PhotoBulk.Result as a table by its format file' {
        (Get-FormatData -TypeName PhotoBulk.Result).FormatViewDefinition[0].Control | Should -BeOfType System.Management.Automation.TableControl
        $text = [pscustomobject]@{ PSTypeName = 'PhotoBulk.Result'; Identity = 'a'; Target = 'ActiveDirectory'; Status = 'Written'; Bytes = 1; BackupId = 'b'; Path = 'p' } | Out-String
        $text | Should -Match 'Identity\s+Target\s+Status\s+Bytes\s+BackupId'
    }
}

Describe 'Windows PowerShell 5.1 syntax check (scripts/ps-check.ps1)' {
    BeforeAll { . (Join-Path $script:RepoRoot 'scripts/ps-check.ps1') }
    It 'passes every PowerShell file of the project' {
        $files = Get-ChildItem -Path (Join-Path $script:RepoRoot 'module'), (Join-Path $script:RepoRoot 'scripts') -Recurse -Include '*.ps1', '*.psm1', '*.psd1'
        $files.Count | Should -BeGreaterThan 5
        @($files | ForEach-Object { Test-Ps51File -File $_.FullName }) | Should -BeNullOrEmpty
    }
    It 'rejects <What>' -ForEach @(
        @{ What = 'null-coalescing'; Code = '$a = $b ?? 1' }, @{ What = 'null-coalescing assignment'; Code = '$a ??= 1' }
        @{ What = 'null-conditional'; Code = '${a}?.Name' }, @{ What = 'ternary'; Code = '$x = $y ? 1 : 2' }
        @{ What = 'pipeline chain'; Code = 'Get-Item . && Get-Item ..' }, @{ What = 'clean block'; Code = 'function f { process { } clean { } }' }
        @{ What = 'ForEach-Object -Parallel'; Code = '1..2 | ForEach-Object -Parallel { $_ }' }
        @{ What = 'ConvertFrom-Json -AsHashtable'; Code = '"{}" | ConvertFrom-Json -AsHashtable' }
        @{ What = 'unguarded IsLinux'; Code = 'if ($IsLinux) { 1 }' }
    ) {
        $f = Join-Path $script:Work ("bad-" + [guid]::NewGuid().ToString('N') + '.ps1')
        Set-Content -LiteralPath $f -Value $Code
        @(Test-Ps51File -File $f).Count | Should -BeGreaterOrEqual 1
    }
    It 'accepts 5.1 code (if/else, hashtables, -and, a guarded IsLinux)' {
        $f = Join-Path $script:Work 'good.ps1'
        Set-Content -LiteralPath $f -Value 'if ($PSVersionTable.PSEdition -eq "Core" -and $IsLinux) { $a = @{ x = 1 } } else { $a = $(if ($b) { 1 } else { 2 }) }'
        @(Test-Ps51File -File $f) | Should -BeNullOrEmpty
    }
}

Describe 'Requests the module sends (tests/sidecar/fixtures/module, replayed against the sidecar by tests/sidecar)' {
    BeforeEach {
        $script:Sent = New-Object System.Collections.Generic.List[object]
        $script:Vars = @{
            PB_SAMBA_URL = 'ldaps://127.0.0.1:636'; PB_SAMBA_BIND = 'CN=Administrator,CN=Users,DC=photobulk,DC=test'
            PB_SAMBA_PASSWORD = 'Pb7-secret'; PB_SAMBA_CA = (Join-Path $TestDrive 'ca.pem')
            PHOTO_DIR = (Join-Path $TestDrive 'photos'); BACKUP_DIR = (Join-Path $TestDrive 'backups')
            GRAPH_URL = 'http://127.0.0.1:9/v1.0'; GRAPH_TOKEN = 'eyJ0eXAi.test.token'
        }
        Set-Content -LiteralPath $script:Vars.PB_SAMBA_CA -Value 'ca'
        $script:MockCred = New-Object pscredential($script:Vars.PB_SAMBA_BIND, (ConvertTo-SecureString $script:Vars.PB_SAMBA_PASSWORD -AsPlainText -Force))
        Mock -ModuleName PhotoBulk Invoke-PhotoBulkRpc {
            $script:Sent.Add([pscustomobject]@{ method = $Method; params = $Params })
            if ($Method -eq 'bulk.plan') {
                foreach ($i in $Params.items) {
                    $id = $i.identity
                    if (-not $id) { $id = ([IO.Path]::GetFileNameWithoutExtension($i.path) -split ' ')[0] }
                    foreach ($t in $Params.targets) { & $OnNotification 'bulk/item' ([pscustomobject]@{ requestId = 1; item = [pscustomobject]@{ path = $i.path; identity = $id; target = $t; status = 'ready'; dn = "CN=$id" } }) }
                }
                return [pscustomobject]@{ items = @() }
            }
            if ($Method -eq 'bulk.run') {
                foreach ($i in $Params.items) {
                    if ($Params.targets -contains 'ExchangeOnPrem') {
                        $item = [pscustomobject]@{ path = $i.path; identity = $i.identity; target = 'ExchangeOnPrem'; status = 'ready'; hdPath = $i.path; hdSha256 = '${HD_SHA256}' }
                        & $OnNotification 'bulk/item' ([pscustomobject]@{ requestId = 1; item = $item })
                    }
                }
                return [pscustomobject]@{ summary = @{}; journal = (Join-Path $script:Vars.BACKUP_DIR 'journal.jsonl') }
            }
            [pscustomobject]@{}
        }
        function Get-Fixture {
            param([string]$Name)
            $text = Get-Content -Raw -LiteralPath (Join-Path $script:ModuleFixtures $Name)
            foreach ($k in $script:Vars.Keys) { $text = $text.Replace('${' + $k + '}', ($script:Vars[$k] -replace '\\', '\\')) }
            $text | ConvertFrom-Json
        }
        function ConvertTo-Canonical {
            # JSON text with keys sorted and '\' turned into '/', so key order and path separators do not matter.
            param($Value)
            if ($null -eq $Value) { return 'null' }
            if ($Value -is [string]) { return (ConvertTo-Json -InputObject ($Value.Replace('\', '/')) -Compress) }
            if ($Value -is [System.Collections.IDictionary]) {
                $parts = foreach ($k in ($Value.Keys | Sort-Object)) { '"' + $k + '":' + (ConvertTo-Canonical $Value[$k]) }
                return '{' + ($parts -join ',') + '}'
            }
            if ($Value -is [System.Management.Automation.PSCustomObject]) {
                $parts = foreach ($p in ($Value.PSObject.Properties | Sort-Object -Property Name)) { '"' + $p.Name + '":' + (ConvertTo-Canonical $p.Value) }
                return '{' + ($parts -join ',') + '}'
            }
            if ($Value -is [array] -or $Value -is [System.Collections.IList]) { return '[' + ((@($Value) | ForEach-Object { ConvertTo-Canonical $_ }) -join ',') + ']' }
            return (ConvertTo-Json -InputObject $Value -Compress)
        }
        function Assert-Sent {
            param([string]$Fixture)
            $want = @((Get-Fixture $Fixture).requests | Where-Object { $_.method -notin @('initialize', 'shutdown') })
            $script:Sent.Count | Should -Be $want.Count
            for ($i = 0; $i -lt $want.Count; $i++) {
                $script:Sent[$i].method | Should -Be $want[$i].method
                ConvertTo-Canonical $script:Sent[$i].params | Should -Be (ConvertTo-Canonical $want[$i].params)
            }
        }
    }
    It 'Set-PhotoBulk by file name sends 1-set-photobulk.json' {
        $paths = @((Join-Path $script:Vars.PHOTO_DIR 'sidecar.00001.jpg'), (Join-Path $script:Vars.PHOTO_DIR 'sidecar.00002 new.jpg'))
        $null = Set-PhotoBulk -Path $paths -Server $script:Vars.PB_SAMBA_URL -Credential $script:MockCred -CaFile $script:Vars.PB_SAMBA_CA -BackupPath $script:Vars.BACKUP_DIR -Confirm:$false
        Assert-Sent '1-set-photobulk.json'
    }
    It 'Set-PhotoBulk from a CSV with -Force sends 2-set-photobulk-identity-force.json' {
        $f = Get-Fixture '2-set-photobulk-identity-force.json'
        $null = [pscustomobject]@{ Identity = $f.pesterIdentity; Path = $f.pesterPath } |
            Set-PhotoBulk -MatchBy UserPrincipalName -Server $script:Vars.PB_SAMBA_URL -Credential $script:MockCred -CaFile $script:Vars.PB_SAMBA_CA -BackupPath $script:Vars.BACKUP_DIR -Crop Top -Force -Confirm:$false
        Assert-Sent '2-set-photobulk-identity-force.json'
    }
    It 'Get-PhotoReport sends 3-get-photoreport.json' {
        $null = 'sidecar.00001', 'sidecar.00002', 'nobody.here' | Get-PhotoReport -Server $script:Vars.PB_SAMBA_URL -Credential $script:MockCred -CaFile $script:Vars.PB_SAMBA_CA
        Assert-Sent '3-get-photoreport.json'
    }
    It 'Set-PhotoBulk -Target ExchangeOnline with a token sends 4-set-photobulk-exchange-online.json' {
        $paths = @((Join-Path $script:Vars.PHOTO_DIR 'seed.00001.jpg'), (Join-Path $script:Vars.PHOTO_DIR 'seed.00002 cloud.jpg'))
        $token = ConvertTo-SecureString $script:Vars.GRAPH_TOKEN -AsPlainText -Force
        $null = Set-PhotoBulk -Path $paths -Target ExchangeOnline -AccessToken $token -GraphUrl $script:Vars.GRAPH_URL -BackupPath $script:Vars.BACKUP_DIR -Confirm:$false
        Assert-Sent '4-set-photobulk-exchange-online.json'
    }
    It 'Set-PhotoBulk -Target ExchangeOnPrem calls Set-UserPhoto and sends 5-set-photobulk-exchange-onprem.json' {
        $photo = Join-Path $script:Vars.PHOTO_DIR 'sidecar.00001.jpg'
        $null = New-Item -ItemType Directory -Force -Path $script:Vars.PHOTO_DIR
        Set-Content -LiteralPath $photo -Value 'jpeg'
        function global:Set-UserPhoto { [CmdletBinding(SupportsShouldProcess = $true)] param($Identity, [byte[]]$PictureData) }
        try {
            $results = @(Set-PhotoBulk -Path $photo -Target ExchangeOnPrem -BackupPath $script:Vars.BACKUP_DIR -Confirm:$false)
            $results[0].Status | Should -Be 'Written'
            $results[0].Target | Should -Be 'ExchangeOnPrem'
            Assert-Sent '5-set-photobulk-exchange-onprem.json'
        }
        finally { Remove-Item -Path Function:\Set-UserPhoto -ErrorAction SilentlyContinue }
    }
    It 'Set-PhotoBulk -UseExistingHd from Get-ADUser output sends 6-set-photobulk-use-existing-hd.json' {
        $token = ConvertTo-SecureString $script:Vars.GRAPH_TOKEN -AsPlainText -Force
        $null = [pscustomobject]@{ SamAccountName = 'sidecar.00003' }, [pscustomobject]@{ SamAccountName = 'sidecar.00004' } |
            Set-PhotoBulk -UseExistingHd -Server $script:Vars.PB_SAMBA_URL -Credential $script:MockCred -CaFile $script:Vars.PB_SAMBA_CA -AccessToken $token -GraphUrl $script:Vars.GRAPH_URL -BackupPath $script:Vars.BACKUP_DIR -Confirm:$false
        Assert-Sent '6-set-photobulk-use-existing-hd.json'
    }
}

